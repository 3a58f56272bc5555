"""The token encoding of melodies and chorales (see ``genlab.pipelines.music``): the
vocabulary, tokens <-> notes ``(onset16, dur16, pitch)`` on a sixteenth-note grid."""
from __future__ import annotations

from typing import Iterable, Sequence

from ..models.sequence.tokenizers import EOS_ID, SPECIALS, WordTokenizer

DURATIONS = (1, 2, 3, 4, 6, 8, 12, 16)
LOW, HIGH = 36, 96
VOCAB = (*SPECIALS, "rest", "_", *(f"p{m}" for m in range(LOW, HIGH + 1)), *(f"d{d}" for d in DURATIONS))
MAJOR = (0, 2, 4, 5, 7, 9, 11)
# Krumhansl-Kessler key profiles (major, minor) for key finding
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
MINOR = (0, 2, 3, 5, 7, 8, 10)
Note = tuple  # (onset16, dur16, pitch)


def tokenizer() -> WordTokenizer:
    return WordTokenizer(VOCAB)


def _snap(d16: float) -> int:
    return min(DURATIONS, key=lambda d: (abs(d - d16), d))


# ----------------------------------------------------------------------------- encode / decode
def melody_tokens(events: Sequence[tuple[int | None, int]], transpose: int = 0) -> list[str] | None:
    """``[(pitch or None, sixteenths), ...]`` -> tokens; ``None`` if a transposed pitch
    leaves the range ``[36, 96]``."""
    out = []
    for pitch, dur in events:
        if pitch is None:
            out.append("rest")
        else:
            p = pitch + transpose
            if not LOW <= p <= HIGH:
                return None
            out.append(f"p{p}")
        out.append(f"d{_snap(dur)}")
    return out


def melody_notes(tokens: Iterable[str]) -> list[Note]:
    """Tokens -> notes ``(onset, duration, pitch)``; stray tokens are skipped."""
    notes, t, pending = [], 0, "missing"
    for tok in tokens:
        if tok == "rest" or tok.startswith("p"):
            pending = tok
        elif tok.startswith("d") and pending != "missing":
            d = int(tok[1:])
            if pending != "rest":
                notes.append((t, d, int(pending[1:])))
            t += d
            pending = "missing"
    return notes


def chorale_tokens(voices: Sequence[Sequence[tuple[int | None, int]]], step: int = 2) -> list[str]:
    """Four voices of ``(pitch or None, sixteenths)`` -> per-step S/A/T/B tokens."""
    grids = []
    for events in voices:
        grid = []
        for pitch, dur in events:
            n = max(1, round(dur / step))
            if pitch is None or not LOW <= pitch <= HIGH:
                grid += ["rest"] * n
            else:
                grid += [f"p{pitch}"] + ["_"] * (n - 1)
        grids.append(grid)
    T = min(map(len, grids))
    return [grids[v][t] for t in range(T) for v in range(len(grids))]


def chorale_notes(tokens: Sequence[str], voices: int = 4, step: int = 2) -> list[Note]:
    notes: list[list[int]] = []
    current: list[list[int] | None] = [None] * voices
    for i, tok in enumerate(tokens):
        v, t = i % voices, (i // voices) * step
        if tok.startswith("p"):
            current[v] = [t, step, int(tok[1:])]
            notes.append(current[v])
        elif tok == "_" and current[v] is not None:
            current[v][1] += step
        else:
            current[v] = None
    return [tuple(n) for n in notes]


def ids_to_notes(ids: Sequence[int], *, chorale: bool | None = None) -> list[Note]:
    """Token ids (a model sample row) -> notes; the layout is guessed from the tokens."""
    ids = [int(i) for i in ids]
    if EOS_ID in ids:
        ids = ids[:ids.index(EOS_ID)]
    toks = [VOCAB[i] for i in ids if i >= len(SPECIALS) and i < len(VOCAB)]
    if chorale is None:
        chorale = "_" in toks or not any(t.startswith("d") for t in toks)
    return chorale_notes(toks) if chorale else melody_notes(toks)
