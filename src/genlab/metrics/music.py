"""Music metrics: key finding, in-key and repetition shares, distribution distances of
generated to reference pieces, held-out nats per note."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ..data.music import DURATIONS, KK_MAJOR, KK_MINOR, MAJOR, MINOR, VOCAB, Note
from ..data.tokenizers import EOS_ID, SPECIALS

def _hist(values: Iterable[int], bins: Sequence[int]) -> np.ndarray:
    idx = {b: i for i, b in enumerate(bins)}
    h = np.zeros(len(bins))
    for v in values:
        if v in idx:
            h[idx[v]] += 1
    return h / max(h.sum(), 1)


def estimate_key(notes: Sequence[Note]) -> tuple[int, str]:
    """Krumhansl-Schmuckler key finding: ``(tonic pitch class, "major"/"minor")``."""
    pc = np.zeros(12)
    for _, d, p in notes:
        pc[p % 12] += d
    best, key = -2.0, (0, "major")
    for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(pc, np.roll(prof, tonic))[0, 1] if pc.std() > 0 else 0
            if r > best:
                best, key = r, (tonic, mode)
    return key


def in_key_share(notes: Sequence[Note]) -> float:
    if not notes:
        return float("nan")
    tonic, mode = estimate_key(notes)
    scale = {(tonic + s) % 12 for s in (MAJOR if mode == "major" else MINOR)}
    return sum(p % 12 in scale for *_, p in notes) / len(notes)


def repetition_share(notes: Sequence[Note], n: int = 4) -> float:
    """Share of pitch-interval n-grams that occur earlier in the same piece (structure)."""
    pitches = [p for *_, p in sorted(notes)]
    iv = [b - a for a, b in zip(pitches, pitches[1:])]
    grams = [tuple(iv[i:i + n]) for i in range(len(iv) - n + 1)]
    if not grams:
        return float("nan")
    seen, rep = set(), 0
    for g in grams:
        rep += g in seen
        seen.add(g)
    return rep / len(grams)


def music_metrics(generated: Sequence[Sequence[Note]], reference: Sequence[Sequence[Note]]) -> dict[str, float]:
    """Distances of generated pieces to reference pieces (total variation, 0 = same):
    pitch-class histogram and note-duration distribution; plus the in-key share and the
    repetition share of each set, and notes per piece."""
    def pcs(ps):
        return _hist((p % 12 for piece in ps for *_, p in piece), range(12))

    def durs(ps):
        return _hist((d for piece in ps for _, d, _ in piece), DURATIONS)

    def mean(f, ps):
        v = [f(p) for p in ps if len(p) > 4]
        return float(np.nanmean(v)) if v else float("nan")

    return {
        "pitch_class_tv": float(0.5 * np.abs(pcs(generated) - pcs(reference)).sum()),
        "duration_tv": float(0.5 * np.abs(durs(generated) - durs(reference)).sum()),
        "in_key_generated": mean(in_key_share, generated), "in_key_reference": mean(in_key_share, reference),
        "repetition_generated": mean(repetition_share, generated),
        "repetition_reference": mean(repetition_share, reference),
        "notes_per_piece_generated": float(np.mean([len(p) for p in generated])) if generated else 0.0,
        "notes_per_piece_reference": float(np.mean([len(p) for p in reference])) if reference else 0.0,
    }


def nll_per_note(model: Any, ds: Any) -> float:
    """Held-out nats per note event (a melody event -- note or rest -- is a pitch/rest
    token and a duration token; each ``<eos>`` counts as one event)."""
    x = ds.x
    total = float(-model.log_prob(x).sum())
    tok = x[:, 1:]
    notes = int(((tok >= len(SPECIALS)) & (tok != VOCAB.index("_"))).sum()) // 2 + int((tok == EOS_ID).sum())
    return total / max(notes, 1)
