"""Denoising diffusion models: schedules, samplers written against any callable, a U-Net
sized from the data, and the ``diffusion`` family under the one contract."""
from .config import DiffusionConfig
from .model import Diffusion
from .samplers import SAMPLERS, guided
from .schedule import NoiseSchedule
from .latent import LatentDiffusion, LatentDiffusionConfig
from . import writers  # noqa: F401  (registers the .gif trajectory writer)

__all__ = ["Diffusion", "DiffusionConfig", "LatentDiffusion", "LatentDiffusionConfig", "NoiseSchedule", "SAMPLERS", "guided"]
