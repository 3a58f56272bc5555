"""The gradient loop shared by every torch model: optimizers, schedules, early stopping,
atomic checkpoints with bit-identical resume, NaN guard, progress and metrics logs."""
from .config import TrainConfig
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer"]
