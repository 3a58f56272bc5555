"""Config of the sequence VAE (a SMILES VAE: recurrent encoder and decoder).

It extends the sequence family's ``SequenceConfig``, so the tokenizer travels in the
config exactly as for the language models (``tokenizer``, ``vocab``, ``merges``, ``start``
filled from the data set's ``meta["tokenizer"]`` at the first ``fit``): any tokenizer the
sequence family knows (characters, BPE, words, and the molecule tokenizers) works unchanged.
"""
from __future__ import annotations

import dataclasses

from ..sequence.config import SequenceConfig


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(f"SeqVAEConfig: {msg}")


def _pos_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


@dataclasses.dataclass(frozen=True)
class SeqVAEConfig(SequenceConfig):
    """A VAE over token sequences (Bowman et al. 2016, "Generating Sentences from a
    Continuous Space"; Gomez-Bombarelli et al. 2018, "Automatic Chemical Design Using a
    Data-Driven Continuous Representation of Molecules"; the MOSES VAE baseline,
    Polykovskiy et al. 2020).

    Defaults follow the MOSES VAE (GRU decoder of 3 x 512 units fed ``z`` at every step
    and started from a state computed from ``z``, ``latent_dim=128``, KL weight annealed
    linearly from 0 to 0.05), except that the encoder is bidirectional. ``kl_max=1``
    trains the ELBO proper and gives the tightest likelihood bound, but a strong
    autoregressive decoder then tends to ignore ``z`` (posterior collapse), which leaves
    nothing to interpolate; a small ``kl_max``, word dropout or free bits keep ``z`` in use.

    Attributes (besides the tokenizer fields of ``SequenceConfig``):
        embed_dim: token embedding size, shared by encoder and decoder.
        enc_hidden: units per direction of the encoder GRU.
        enc_layers: stacked encoder GRU layers.
        bidirectional: read the sequence both ways (the posterior sees the final state
            of each direction).
        dec_cell: the decoder's recurrent cell, ``gru`` (MOSES) or ``lstm``.
        dec_hidden: units of the decoder GRU.
        dec_layers: stacked decoder GRU layers.
        latent_dim: size of ``z``.
        dropout: dropout on embeddings, between stacked layers and before the output layer.
        word_dropout: probability of blanking a decoder input token (its embedding set
            to zero) during training, so the decoder must lean on ``z`` (Bowman et al. 2016).
        kl_max: final weight of the KL term (1: the ELBO; MOSES: 0.05).
        kl_warmup_steps: the KL weight rises linearly from 0 to ``kl_max`` over this many
            optimizer steps (0: ``kl_max`` from the start). The step count is a buffer
            saved with the weights and in checkpoints, so a resumed run continues the
            schedule where it stopped.
        free_bits: minimum KL in nats per latent dimension (batch average) in the
            training objective, against posterior collapse (Kingma et al. 2016, "Improved
            Variational Inference with Inverse Autoregressive Flow"); 0: off.
        iwae_k: default importance samples for ``log_prob`` (``k=1`` is the ELBO).
        decoder_from: a saved recurrent language model (a genlab model folder, e.g. the
            ``lstm`` of ``genlab train lstm --data moses``) whose embedding, recurrent
            layers and output layer start the decoder at the first ``fit`` (its inputs
            from ``z`` start at zero, so training begins at the language model's
            likelihood). Its cell, sizes and vocabulary must match this config.
        tie_weights: share the embedding and the output layer (needs ``embed_dim ==
            dec_hidden``).
    """

    embed_dim: int = 64
    enc_hidden: int = 256
    enc_layers: int = 1
    bidirectional: bool = True
    dec_cell: str = "gru"
    dec_hidden: int = 512
    dec_layers: int = 3
    latent_dim: int = 128
    word_dropout: float = 0.0
    kl_max: float = 0.05
    kl_warmup_steps: int = 1000
    free_bits: float = 0.0
    iwae_k: int = 8
    tie_weights: bool = False
    decoder_from: str | None = None

    def __post_init__(self) -> None:
        self._check_common()
        for name in ("embed_dim", "enc_hidden", "enc_layers", "dec_hidden", "dec_layers",
                     "latent_dim", "iwae_k"):
            _need(_pos_int(getattr(self, name)), f"{name} must be a positive integer, got {getattr(self, name)!r}")
        _need(self.dec_cell in ("gru", "lstm"), f"dec_cell must be 'gru' or 'lstm', got {self.dec_cell!r}")
        _need(self.decoder_from is None or (isinstance(self.decoder_from, str) and self.decoder_from),
              f"decoder_from must be a model folder path, got {self.decoder_from!r}")
        _need(isinstance(self.bidirectional, bool),
              f"bidirectional must be true or false, got {self.bidirectional!r}")
        _need(0 <= self.word_dropout < 1, f"word_dropout must be in [0, 1), got {self.word_dropout!r}")
        _need(self.kl_max >= 0, f"kl_max must be >= 0, got {self.kl_max!r}")
        _need(isinstance(self.kl_warmup_steps, int) and self.kl_warmup_steps >= 0,
              f"kl_warmup_steps must be an integer >= 0, got {self.kl_warmup_steps!r}")
        _need(self.free_bits >= 0, f"free_bits must be >= 0 (nats per latent dimension), got {self.free_bits!r}")
        _need(not (self.tie_weights and self.embed_dim != self.dec_hidden),
              f"tie_weights needs embed_dim == dec_hidden, got {self.embed_dim} and {self.dec_hidden}; "
              "pass --tie_weights=false or set embed_dim")

    def kl_weight(self, step: int) -> float:
        """The KL weight at optimizer step ``step`` (0-based): ``kl_max * min(1, step / warmup)``."""
        if self.kl_warmup_steps == 0:
            return float(self.kl_max)
        return float(self.kl_max) * min(1.0, step / self.kl_warmup_steps)
