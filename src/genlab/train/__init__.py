"""The one training loop shared by every torch model, with pluggable steps: optimizers,
schedules, early stopping, atomic checkpoints with bit-identical resume, divergence guard,
progress and metrics logs, callbacks, torchrun."""
from .callbacks import Callback
from .config import TrainConfig
from .steps import GradientStep, Step
from .trainer import Trainer

__all__ = ["Callback", "GradientStep", "Step", "TrainConfig", "Trainer"]
