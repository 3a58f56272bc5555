"""The sequence VAE family (``seqvae``, alias ``smiles-vae``): a recurrent VAE over token
sequences with a continuous latent space (sampling, interpolation, IWAE likelihood bound)."""
from .config import SeqVAEConfig
from .model import SeqVAE

__all__ = ["SeqVAE", "SeqVAEConfig"]
