"""Music as data: the token encoding of melodies and chorales (see ``genlab.pipelines.music``
for the whole picture) — the vocabulary, tokens <-> notes ``(onset16, dur16, pitch)`` on a
sixteenth-note grid — and the music21 corpora (folk tunes, Bach chorales) as token rows.
The ``folk`` and ``chorales`` datasets (``genlab.data.text``) load through here."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from ..errors import DataError
from .tokenizers import BOS_ID, EOS_ID, PAD_ID, SPECIALS, WordTokenizer

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


# ----------------------------------------------------------------------------- corpus
def _require_music21():
    try:
        import music21  # noqa: F401
    except ImportError as err:
        raise DataError('music needs music21 (its corpus ships the tunes): pip install "genlab[music]"') from err
    return music21


def _events(part) -> list[tuple[int | None, int]]:
    out = []
    for el in part.flatten().notesAndRests:
        ql = float(el.quarterLength)
        if ql <= 0:  # grace notes
            continue
        d = max(1, round(ql * 4))
        if el.isRest:
            pitch = None
        elif el.isChord:
            pitch = max(p.midi for p in el.pitches)
        else:
            pitch = el.pitch.midi
        if out and pitch is None and out[-1][0] is None:
            out[-1] = (None, out[-1][1] + d)
        else:
            out.append((pitch, d))
    return out


def _cache_dir() -> Path:
    root = os.environ.get("GENLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genlab")
    return Path(root) / "music"


def folk_events(n: int | None = None) -> list[list[tuple[int | None, int]]]:
    """Melodies of Ryan's Mammoth Collection (music21 corpus, 1059 ABC tunes), parsed once
    and cached as JSON in ``$GENLAB_CACHE/music`` (parsing takes ~0.25 s a tune)."""
    m21 = _require_music21()
    paths = sorted(str(p) for p in m21.corpus.getPaths() if "ryansMammoth" in str(p))
    if not paths:
        raise DataError("music21's corpus has no ryansMammoth tunes; reinstall music21")
    paths = paths[:n] if n else paths
    cache = _cache_dir() / f"ryans_{len(paths)}.json"
    if cache.is_file():
        return [[tuple(e) for e in tune] for tune in json.loads(cache.read_text())]
    from ..progress import Progress

    tunes = []
    with Progress(len(paths), f"parsing the folk tunes (once; cached in {cache.parent})", "tune") as bar:
        for p in paths:
            try:
                tunes.append(_events(m21.converter.parse(p)))
            except Exception:  # a tune music21 cannot read is skipped, not fatal
                pass
            bar.update(1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(tunes))
    return tunes


def chorale_voices(n: int | None = None) -> list[list[list[tuple[int | None, int]]]]:
    """Four-part Bach chorales (music21 corpus), voices S/A/T/B as events; cached."""
    m21 = _require_music21()
    cache = _cache_dir() / f"chorales_{n or 'all'}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from ..progress import Progress

    out = []
    with Progress(n, f"parsing the Bach chorales (once; cached in {cache.parent})", "chorale") as bar:
        for i, score in enumerate(m21.corpus.chorales.Iterator()):
            if n and len(out) >= n:
                break
            if len(score.parts) == 4:
                out.append([_events(p) for p in score.parts])
                bar.update(1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


def sequences_to_splits(pieces: list[list[str]], *, name: str, max_tokens: int, augment: Sequence[int] = (0,),
                        transposer=None, fractions=(0.8, 0.1, 0.1), seed: int = 0,
                        limit: int | None = None) -> dict[str, Any]:
    """Token lists -> item rows, split by piece (augmented copies only in train)."""
    from .dataset import Dataset

    tok = tokenizer()
    perm = torch.randperm(len(pieces), generator=torch.Generator().manual_seed(seed)).tolist()
    n_tr, n_va = round(fractions[0] * len(pieces)), round(fractions[1] * len(pieces))
    parts = {"train": perm[:n_tr], "val": perm[n_tr:n_tr + n_va], "test": perm[n_tr + n_va:]}
    T = max_tokens + 2
    out = {}
    for key, idx in parts.items():
        rows = []
        for i in idx:
            for k in (augment if key == "train" else (0,)):
                toks = transposer(i, k) if transposer else pieces[i]
                if toks:
                    rows.append([BOS_ID, *tok.encode(" ".join(toks[:max_tokens])), EOS_ID])
        x = torch.full((len(rows), T), PAD_ID, dtype=torch.long)
        for r, row in enumerate(rows):
            x[r, :len(row)] = torch.tensor(row)
        out[key] = Dataset(x, kind="sequence", name=name,
                           meta={"dataset": name, "tokenizer": tok.to_config(), "start": SPECIALS[1],
                                 "layout": "music", "split": key, "pieces": [int(i) for i in idx]})
    if limit:
        out = {k: v.subset(slice(0, limit)) for k, v in out.items()}
    return out


def folk_splits(*, tunes: int | None = 400, max_notes: int = 64, transpose: Sequence[int] = (-2, -1, 0, 1, 2),
                limit: int | None = None) -> dict[str, Any]:
    """Folk melodies (Ryan's Mammoth) as ``<bos> pitch dur ... <eos>`` rows (first
    ``max_notes`` notes), split 80/10/10 by tune; training tunes also transposed by
    ``transpose`` semitones."""
    events = folk_events(tunes)
    events = [e for e in events if len(e) >= 8]
    return sequences_to_splits(events, name="folk", max_tokens=2 * max_notes, augment=tuple(transpose),
                               transposer=lambda i, k: melody_tokens(events[i], k), limit=limit)


def chorale_splits(*, chorales: int | None = 100, max_steps: int = 64, limit: int | None = None) -> dict[str, Any]:
    """Bach chorales as S/A/T/B tokens on an eighth-note grid (first ``max_steps`` steps)."""
    voices = chorale_voices(chorales)
    pieces = [chorale_tokens(v) for v in voices]
    return sequences_to_splits(pieces, name="chorales", max_tokens=4 * max_steps, limit=limit)


def is_music_model(model: Any) -> bool:
    from .tokenizers import token_modality

    return token_modality(model.config) == "music"  # what a sequence model's tags say
