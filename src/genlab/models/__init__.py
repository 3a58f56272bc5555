"""Model families; importing this package registers every family in ``genlab.MODELS``."""
from .torch_model import TorchGenerativeModel
from .autoencoder import Autoencoder, AutoencoderConfig
from .vae import VAE, VAEConfig
from .gan import GAN, GANConfig, SRGAN, SRGANConfig
from .sequence import GRU, LSTM, RNN, RecurrentConfig, Transformer, TransformerConfig
from .seqvae import SeqVAE, SeqVAEConfig
from .diffusion import Diffusion, DiffusionConfig, LatentDiffusion, LatentDiffusionConfig
from . import pgm  # noqa: F401  (registers bayesnet, mrf, rbm)

__all__ = ["Autoencoder", "AutoencoderConfig", "VAE", "VAEConfig", "GAN", "GANConfig", "SRGAN", "SRGANConfig", "RNN", "LSTM", "GRU", "Transformer",
           "RecurrentConfig", "TransformerConfig", "SeqVAE", "SeqVAEConfig", "Diffusion", "DiffusionConfig",
           "LatentDiffusion", "LatentDiffusionConfig", "TorchGenerativeModel"]
