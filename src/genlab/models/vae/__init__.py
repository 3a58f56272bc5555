from .config import VAEConfig
from .model import VAE

__all__ = ["VAE", "VAEConfig"]
