"""What every sequence model shares: the tokenizer from the config, the next-token loss,
exact log-likelihoods, sampling, beam search and text helpers.

Data: a ``kind="sequence"`` Dataset of token windows ``x (N, T)``; the model learns
``p(x_t | x_<t)`` for ``t = 2..T`` (teacher forcing: inputs ``x[:, :-1]``, targets
``x[:, 1:]``). Item data (names, words) are ``<bos> item <eos> <pad>...`` rows, so the
likelihood of a row is that of the whole item; running text is cut into windows that
overlap by one token, so every token of the corpus but the first is predicted once.
``<pad>`` targets are ignored everywhere.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..torch_model import TorchGenerativeModel
from ...errors import DataError
from ...progress import tick
from . import sampling
from .sampling import mask_never_next
from ...data.tokenizers import BOS, BOS_ID, EOS_ID, PAD_ID, SPECIALS, from_config


class SequenceLM(TorchGenerativeModel):
    """Base of the recurrent and Transformer language models (see the module docstring).

    Subclasses implement ``build()``, ``_logits(inp) -> (B, L, V)`` (training, teacher
    forcing), ``_next_logits(ids, state)`` and ``_reorder_state(state, index)`` (see
    ``sampling``).
    """

    log_prob_kind = "exact"
    declared_tags = {"text_output": True, "per_token_nll": True, "text_prompts": True,
                     "conditions": ("prompt",)}

    def _config_tags(self) -> dict[str, Any]:
        """Samples are token rows; what they spell (text, molecules, music) is read
        from the tokenizer in the config."""
        from ...data.tokenizers import token_modality

        out = super()._config_tags()
        out.pop("sample_shape", None)  # rows have any length up to max_len
        out["modality"] = token_modality(self.config)
        return out

    # ---------------------------------------------------------------- tokenizer and data
    @property
    def tokenizer_(self):
        """The tokenizer stored in the config (``CharTokenizer`` or ``BPETokenizer``)."""
        self.check_fitted()
        key = (self.config.tokenizer, self.config.vocab, self.config.merges)
        if getattr(self, "_tok_key", None) != key:
            self._tok, self._tok_key = from_config(*key), key
        return self._tok

    @property
    def vocab_size(self) -> int:
        return len(self.config.vocab)

    def data_defaults(self, dataset: Any) -> dict[str, Any]:
        if getattr(dataset, "kind", None) != "sequence":
            raise DataError(f"{type(self).__name__} trains on token sequences (a Dataset of kind "
                            f"'sequence', e.g. --data shakespeare), got {getattr(dataset, 'kind', dataset)!r} data")
        tok = dataset.meta.get("tokenizer")
        if not tok or "vocab" not in tok:
            raise DataError(f"{dataset.name}: a sequence Dataset needs meta['tokenizer'] = "
                            "{'tokenizer', 'vocab', 'merges'}; build it with genlab.data.text")
        vocab = tuple(tok["vocab"])
        if int(dataset.x.max()) >= len(vocab) or int(dataset.x.min()) < 0:
            raise DataError(f"{dataset.name}: token ids outside the vocabulary of {len(vocab)}")
        return {"tokenizer": tok.get("tokenizer", "char"), "vocab": vocab,
                "merges": tuple(tuple(m) for m in tok.get("merges", ())),
                "start": dataset.meta.get("start", BOS)}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer_.encode(text)

    def decode(self, ids: Sequence[int], **kw: Any) -> str:
        return self.tokenizer_.decode(ids, **kw)

    # ---------------------------------------------------------------- training
    def _logits(self, inp: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mean next-token cross-entropy (nats per token) over non-``<pad>`` targets."""
        x = batch["x"]
        logits = mask_never_next(self._logits(x[:, :-1]))              # (B, T-1, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                               ignore_index=PAD_ID)
        return {"loss": loss, "bits_per_token": loss / math.log(2)}

    # ---------------------------------------------------------------- likelihood
    @torch.no_grad()
    def token_log_probs(self, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """``log p(x_t | x_<t)`` for ``t = 2..T``, ``(N, T-1)`` float64, 0 at ``<pad>`` targets."""
        self.check_fitted()
        x = self._as_ids(x)
        was = self.training
        self.eval()
        out = []
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size]
            lp = mask_never_next(self._logits(xb[:, :-1])).double().log_softmax(-1)
            lp = lp.gather(-1, xb[:, 1:, None]).squeeze(-1)
            out.append(lp.masked_fill(xb[:, 1:] == PAD_ID, 0.0))
            tick(len(xb))  # the caller's progress, if any (genlab.progress.task)
        self.train(was)
        return torch.cat(out)

    def log_prob(self, x: Any) -> torch.Tensor:
        """Exact ``log p(x_2..x_T | x_1)`` per row, in nats, ``(N,)`` float64.

        For item data (rows start with ``<bos>``) this is the log-probability of the
        whole item including its ``<eos>``. It takes no options (exact: no ``k``, no
        ``generator``).
        """
        return self.token_log_probs(x).sum(1)

    def _target_counts(self, x: torch.Tensor) -> tuple[int, int]:
        """(tokens, characters) predicted in ``x``: ``<eos>`` counts as one character."""
        tgt = self._as_ids(x)[:, 1:]
        lens = torch.tensor([1 if t == EOS_ID else (0 if t < len(SPECIALS) else len(t_))
                             for t, t_ in ((i, self.config.vocab[i]) for i in range(self.vocab_size))])
        return int((tgt != PAD_ID).sum()), int(lens[tgt].sum())

    def nll_per_token(self, x: Any) -> float:
        """Mean negative log-likelihood in nats per predicted token."""
        return float(-self.log_prob(x).sum()) / self._target_counts(x)[0]

    def nll_per_char(self, x: Any) -> float:
        """Nats per character of the predicted text (equals per token for characters)."""
        return float(-self.log_prob(x).sum()) / self._target_counts(x)[1]

    def perplexity(self, x: Any) -> float:
        """``exp`` of the mean nats per token."""
        return math.exp(self.nll_per_token(x))

    def bits_per_token(self, x: Any) -> float:
        return self.nll_per_token(x) / math.log(2)

    def bits_per_char(self, x: Any) -> float:
        return self.nll_per_char(x) / math.log(2)

    def _as_ids(self, x: Any) -> torch.Tensor:
        if hasattr(x, "x") and hasattr(x, "kind"):
            x = x.x
        x = torch.as_tensor(x)
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"expected token ids (N, T), got {tuple(x.shape)} {x.dtype}")
        if len(x) and (int(x.max()) >= self.vocab_size or int(x.min()) < 0):
            raise ValueError(f"token ids must be in [0, {self.vocab_size})")
        return x.long()

    # ---------------------------------------------------------------- generation
    def _prompt_ids(self, n: int, prompt: Any) -> torch.Tensor:
        if prompt is None:
            start = self.config.start
            ids = [BOS_ID] if start == BOS else self.encode(start)
            return torch.tensor(ids, dtype=torch.long).expand(n, -1).clone()
        if torch.is_tensor(prompt):
            p = prompt.long()
            p = p[None].expand(n, -1) if p.dim() == 1 else p
            if len(p) != n:
                raise ValueError(f"prompt ids have {len(p)} rows for n={n}")
            return p.clone()
        texts = [prompt] * n if isinstance(prompt, str) else list(prompt)
        if len(texts) != n:
            raise ValueError(f"{len(texts)} prompts given for n={n}")
        lead = [BOS_ID] if self.config.start == BOS else []
        ids = [lead + self.encode(t) for t in texts]
        if len({len(i) for i in ids}) != 1:
            raise ValueError("prompts of one batch must have the same number of tokens; "
                             "sample them in separate calls")
        return torch.tensor(ids, dtype=torch.long)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, prompt: Any = None,
               max_len: int | None = None, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, stop: Any = None, use_cache: bool = True) -> torch.Tensor:
        """Generate ``n`` sequences of token ids, batched with carried state / a KV cache.

        Args:
            n: number of sequences.
            generator: seeds the draws (bit-reproducible).
            prompt: text (the same for all rows), a list of ``n`` texts of equal token
                length, or ids ``(P,)`` / ``(n, P)``; default: the start token.
            max_len: total length in tokens including the prompt (default: the training
                window length).
            temperature: ``< 1`` sharper, ``> 1`` flatter, ``0`` greedy.
            top_k: sample among the ``k`` most likely tokens only.
            top_p: nucleus sampling: the smallest set of tokens with probability ``top_p``.
            stop: a string (or strings) that ends a row once generated (kept in the output).
            use_cache: carry state between steps (turn off only to measure the speed-up).
        Returns:
            ``(n, max_len)`` int64 token ids; rows that ended early are ``<pad>``-filled.
            ``samples_to_text`` turns them into strings.
        """
        self.check_fitted()
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        sampling.check_sampling_args(temperature, top_k, top_p)
        ids = self._on_device(self._prompt_ids(n, prompt))
        max_len = self.config.data_shape[0] if max_len is None else int(max_len)
        if max_len <= ids.shape[1]:
            raise ValueError(f"max_len={max_len} leaves no room after the {ids.shape[1]}-token prompt")
        stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
        was = self.training
        self.eval()
        try:
            return sampling.generate(self, ids, max_len, temperature=temperature, top_k=top_k,
                                     top_p=top_p, stop=stop, generator=generator,
                                     use_cache=use_cache)
        finally:
            self.train(was)

    @torch.no_grad()
    def beam_search(self, prompt: Any = None, beam_width: int = 5, max_len: int | None = None, *,
                    length_penalty: float = 0.0) -> list[tuple[torch.Tensor, float]]:
        """The most likely continuations of one prompt (see ``sampling.beam_search``).

        Returns:
            ``[(ids (L,), score), ...]``, best first, at most ``beam_width``.
        """
        self.check_fitted()
        ids = self._on_device(self._prompt_ids(1, prompt)[0])
        max_len = self.config.data_shape[0] if max_len is None else int(max_len)
        was = self.training
        self.eval()
        try:
            return sampling.beam_search(self, ids, beam_width, max_len, length_penalty=length_penalty)
        finally:
            self.train(was)

    def write_samples(self, x: torch.Tensor, path: Any) -> bool:
        """``genlab sample RUN -o out.mid`` / ``out.wav`` for music models (one file per
        sample: ``out_0.mid``, ...); False for other formats or non-music models."""
        from ...data.music_io import write_samples

        return write_samples(self, x, path)

    def samples_to_text(self, x: torch.Tensor) -> list[str]:
        """Decode rows of ids, cutting each at its first ``<eos>``; specials are dropped."""
        out = []
        for row in torch.as_tensor(x).tolist():
            if EOS_ID in row:
                row = row[:row.index(EOS_ID)]
            out.append(self.decode(row))
        return out
