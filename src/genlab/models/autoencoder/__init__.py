from .config import AutoencoderConfig
from .model import Autoencoder

__all__ = ["Autoencoder", "AutoencoderConfig"]
