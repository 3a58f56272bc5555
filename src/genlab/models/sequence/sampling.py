"""Decoding for the sequence family: the next-token rule (temperature, top-k, nucleus)
and beam search, written against two model methods so RNNs and the Transformer share them:

* ``model._next_logits(ids, state) -> (logits (B, V), state)``: the logits of the token
  after ``ids (B, L)``. ``state`` is whatever the model carries between calls (an RNN's
  hidden state, a Transformer's key/value cache) plus how many tokens it has consumed;
  ``None`` starts afresh. Passing the same ``ids`` grown by one token each call makes
  every call O(1) in the length for an RNN and O(L) for a cached Transformer.
* ``model._reorder_state(state, index) -> state``: keep / duplicate batch rows (beam search).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch

from ...data.tokenizers import BOS_ID, EOS_ID, PAD_ID

#: tokens a sequence model never predicts: ``<pad>`` only fills rows after ``<eos>``, and
#: ``<bos>`` only opens a row. Their logits are masked to ``-inf`` in training, scoring
#: and decoding alike, so ``log_prob`` is a distribution over real continuations (it sums
#: to 1 over them) and no sample holds a ``<pad>`` or ``<bos>`` in mid-row.
NEVER_NEXT = (PAD_ID, BOS_ID)


def mask_never_next(logits: torch.Tensor) -> torch.Tensor:
    """``logits (..., V)`` with the ``NEVER_NEXT`` tokens set to ``-inf`` (out of place)."""
    idx = torch.tensor(NEVER_NEXT, device=logits.device)
    return logits.index_fill(-1, idx, float("-inf"))


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Refuse bad decoding options with a ``ValueError`` naming the option.

    ``temperature`` must be a finite number >= 0 (0 = greedy), ``top_k`` a positive
    integer or ``None``, ``top_p`` in ``(0, 1]`` or ``None``. NaN is refused explicitly:
    it compares ``False`` with everything and would otherwise reach the softmax.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real)
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def filter_logits(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Scale by ``1/temperature`` and mask (to -inf) tokens outside top-k / the nucleus.

    Args:
        logits: ``(B, V)``.
        temperature: > 0.
        top_k: keep the ``k`` most likely tokens (ties with the k-th are kept).
        top_p: keep the smallest set of most likely tokens whose probability reaches
            ``top_p`` (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration").
    Returns:
        ``(B, V)`` filtered logits.
    """
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # mass of the strictly more likely tokens
        drop_sorted = before >= top_p      # the most likely token always stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the next token ``(B,)`` from ``logits (B, V)``; ``temperature=0`` is greedy."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits.float(), temperature=temperature, top_k=top_k, top_p=top_p).softmax(-1)
    if generator is not None and probs.device.type != "cpu":  # a seeded CPU generator: draw on the CPU
        return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.no_grad()
def generate(model: Any, prompt: torch.Tensor, max_len: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             stop: Sequence[str] = (), generator: torch.Generator | None = None,
             use_cache: bool = True) -> torch.Tensor:
    """Extend every row of ``prompt (B, P)`` to ``max_len`` tokens.

    A row ends at ``<eos>`` or once its generated text ends with one of ``stop``; it is
    then filled with ``<pad>``. With ``use_cache=False`` every step recomputes from the
    whole sequence (for measuring what the cache buys; the tokens are the same).
    """
    check_sampling_args(temperature, top_k, top_p)
    ids = prompt
    B, P = ids.shape
    done = torch.zeros(B, dtype=torch.bool, device=ids.device)
    state = None
    tail = max((len(s) for s in stop), default=0)
    tok = model.tokenizer_ if stop else None
    while ids.shape[1] < max_len:
        logits, state = model._next_logits(ids, state if use_cache else None)
        logits = mask_never_next(logits)
        nxt = next_token(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                         generator=generator)
        nxt = nxt.masked_fill(done, PAD_ID)
        ids = torch.cat([ids, nxt[:, None]], 1)
        done |= nxt == EOS_ID
        if stop:
            for b in range(B):
                if not done[b]:
                    text = tok.decode(ids[b, max(P, ids.shape[1] - tail):].tolist())
                    done[b] = any(text.endswith(s) for s in stop)
        if bool(done.all()):
            ids = torch.cat([ids, ids.new_full((B, max_len - ids.shape[1]), PAD_ID)], 1)
            break
    return ids


@torch.no_grad()
def beam_search(model: Any, prompt: torch.Tensor, beam_width: int, max_len: int, *,
                length_penalty: float = 0.0) -> list[tuple[torch.Tensor, float]]:
    """The ``beam_width`` most likely continuations of ``prompt (P,)`` up to ``max_len``.

    Finished hypotheses (ending in ``<eos>``) and the survivors at ``max_len`` are ranked
    by ``log p / length ** length_penalty`` (0: plain log-probability). With
    ``beam_width=1`` this is greedy decoding.

    Returns:
        ``[(ids (L,), score), ...]`` best first.
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}")
    if not isinstance(length_penalty, numbers.Real) or not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}")
    P = len(prompt)
    ids = prompt[None]                      # (K, L) alive beams
    scores = torch.zeros(1, dtype=torch.float64)
    finished: list[tuple[torch.Tensor, float, float]] = []  # (ids, logp, rank score)

    def rank(logp: float, length: int) -> float:
        return logp / max(length - P, 1) ** length_penalty

    state = None
    while ids.shape[1] < max_len and len(ids):
        logits, state = model._next_logits(ids, state)
        logp = mask_never_next(logits).double().log_softmax(-1).cpu()  # (K, V)
        cand = (scores[:, None] + logp).flatten()
        top = torch.topk(cand, min(2 * beam_width, len(cand)))
        V = logp.shape[1]
        keep_rows, keep_tok, keep_score = [], [], []
        for s, flat in zip(top.values.tolist(), top.indices.tolist()):
            row, t = divmod(flat, V)
            if t == PAD_ID:
                continue
            if t == EOS_ID:
                seq = torch.cat([ids[row], ids.new_tensor([EOS_ID])])
                finished.append((seq, s, rank(s, len(seq))))
            elif len(keep_rows) < beam_width:
                keep_rows.append(row), keep_tok.append(t), keep_score.append(s)
            if len(keep_rows) >= beam_width:
                break
        if not keep_rows:
            ids = ids[:0]
            break
        index = torch.tensor(keep_rows, device=ids.device)
        ids = torch.cat([ids[index], torch.tensor(keep_tok, device=ids.device)[:, None]], 1)
        scores = torch.tensor(keep_score, dtype=torch.float64)
        state = model._reorder_state(state, index)
        # log-probabilities only fall as beams grow: stop once no alive beam can win
        if length_penalty == 0 and len(finished) >= beam_width and \
                sorted(f[2] for f in finished)[-beam_width] >= float(scores.max()):
            ids = ids[:0]
            break
    finished += [(ids[i], float(scores[i]), rank(float(scores[i]), ids.shape[1])) for i in range(len(ids))]
    finished.sort(key=lambda f: -f[2])
    return [(seq, score) for seq, _, score in finished[:beam_width]]
