"""The GAN family: ``GAN`` (``"gan"``, alias ``"dcgan"``) and ``SRGAN`` (``"srgan"``)."""
from .config import GANConfig, SRGANConfig
from .model import GAN
from .sr import SRGAN

__all__ = ["GAN", "GANConfig", "SRGAN", "SRGANConfig"]
