"""Model families; importing this package registers every family in ``genlab.MODELS``."""
from .autoencoder import Autoencoder, AutoencoderConfig
from .vae import VAE, VAEConfig

__all__ = ["Autoencoder", "AutoencoderConfig", "VAE", "VAEConfig"]
