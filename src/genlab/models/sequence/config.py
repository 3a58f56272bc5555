"""Configs of the sequence family (recurrent nets and the causal Transformer).

The tokenizer is part of the config (``tokenizer``, ``vocab``, ``merges``: plain JSON), so
``config.json`` alone rebuilds it; these fields are ``None``/``"auto"`` until the first
``fit`` fills them from the data set's ``meta["tokenizer"]`` (see ``data_defaults``).
"""
from __future__ import annotations

import dataclasses

from ...base import Config

CELLS = ("rnn", "lstm", "gru")
TOKENIZERS = ("auto", "char", "bpe", "word", "smiles", "selfies")


def _need(cond: bool, cls: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{cls}: {msg}")


@dataclasses.dataclass(frozen=True)
class SequenceConfig(Config):
    """Fields every sequence model shares.

    Attributes:
        data_shape: ``(T,)``, the window length of the training data (set at first fit).
        tokenizer: ``"char"``, ``"bpe"``, ``"word"`` (whitespace-separated symbols such
            as music events), ``"smiles"`` (atom-level SMILES tokens) or ``"selfies"``
            (SELFIES symbols); ``"auto"``: from the data.
        vocab: token strings, specials ``<pad>``, ``<bos>``, ``<eos>`` first.
        merges: BPE merges as ``(left_id, right_id)`` pairs, in learned order.
        start: the token text that starts an unprompted sample (``"<bos>"`` for item
            data such as names, ``"\\n"`` for running text; ``"auto"``: from the data).
        dropout: dropout on embeddings, between layers and before the output layer.
        tie_weights: share the input embedding and the output layer (Press & Wolf 2017).
    """

    data_shape: tuple[int, ...] | None = None
    tokenizer: str = "auto"
    vocab: tuple[str, ...] | None = None
    merges: tuple[tuple[int, int], ...] = ()
    start: str = "auto"
    dropout: float = 0.0
    tie_weights: bool = True

    def _check_common(self) -> None:
        name = type(self).__name__
        _need(self.tokenizer in TOKENIZERS, name,
              f"tokenizer must be one of {', '.join(map(repr, TOKENIZERS))}, got {self.tokenizer!r}")
        _need(0 <= self.dropout < 1, name, f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.data_shape is not None:
            _need(len(self.data_shape) == 1 and self.data_shape[0] >= 2, name,
                  f"data_shape must be (T,) with T >= 2 (token windows), got {self.data_shape}")
            _need(self.vocab is not None and len(self.vocab) > 3, name,
                  "a built sequence model needs its vocabulary (fit it on a sequence Dataset "
                  "whose meta holds the tokenizer, e.g. genlab.data.text.text_dataset)")
        # JSON gives lists back: keep the config hashable and comparable
        if self.merges:
            object.__setattr__(self, "merges", tuple(tuple(int(v) for v in m) for m in self.merges))


@dataclasses.dataclass(frozen=True)
class RecurrentConfig(SequenceConfig):
    """A stacked recurrent language model (Elman RNN, LSTM or GRU; the cell is the model type).

    Attributes:
        hidden: units per recurrent layer.
        layers: stacked recurrent layers (dropout between them).
        embed_dim: token embedding size (``None``: ``hidden``; must equal ``hidden`` when
            ``tie_weights``).
        bptt: truncated back-propagation through time: each training window is processed
            in chunks of ``bptt`` steps, the hidden state carried from chunk to chunk but
            detached, so gradients flow at most ``bptt`` steps back (``None``: the whole
            window).
    """

    hidden: int = 256
    layers: int = 2
    embed_dim: int | None = None
    bptt: int | None = None

    def __post_init__(self) -> None:
        self._check_common()
        name = type(self).__name__
        _need(isinstance(self.hidden, int) and self.hidden >= 1, name, f"hidden must be >= 1, got {self.hidden!r}")
        _need(isinstance(self.layers, int) and self.layers >= 1, name, f"layers must be >= 1, got {self.layers!r}")
        _need(self.embed_dim is None or self.embed_dim >= 1, name, f"embed_dim must be >= 1, got {self.embed_dim!r}")
        _need(not (self.tie_weights and self.embed_dim not in (None, self.hidden)), name,
              f"tie_weights needs embed_dim == hidden ({self.hidden}), got {self.embed_dim}; "
              "pass --tie_weights=false or drop embed_dim")
        _need(self.bptt is None or self.bptt >= 1, name, f"bptt must be >= 1, got {self.bptt!r}")


@dataclasses.dataclass(frozen=True)
class TransformerConfig(SequenceConfig):
    """A small causal Transformer (GPT-style: pre-LayerNorm blocks, learned positions).

    Attributes:
        d_model: width of the residual stream.
        layers: Transformer blocks.
        heads: attention heads (must divide ``d_model``).
        context: longest sequence the model attends over (``None``: the training window);
            sampling beyond it slides a window of ``context`` tokens.
        mlp_ratio: MLP hidden width / ``d_model``.
    """

    d_model: int = 128
    layers: int = 4
    heads: int = 4
    context: int | None = None
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        self._check_common()
        name = type(self).__name__
        _need(self.d_model >= 1 and self.heads >= 1 and self.d_model % self.heads == 0, name,
              f"heads ({self.heads}) must divide d_model ({self.d_model})")
        _need(self.layers >= 1, name, f"layers must be >= 1, got {self.layers!r}")
        _need(self.mlp_ratio >= 1, name, f"mlp_ratio must be >= 1, got {self.mlp_ratio!r}")
        _need(self.context is None or self.context >= 1, name, f"context must be >= 1, got {self.context!r}")
