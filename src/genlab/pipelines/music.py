"""Music composition with sequence models: melodies and chorales as token sequences,
MIDI / WAV / piano-roll output and music metrics.

Encoding (all on a sixteenth-note grid):

* melody: one pitch token (``p60`` = MIDI 60, or ``rest``) then one duration token
  (``d1``..``d16`` sixteenths, snapped to 1, 2, 3, 4, 6, 8, 12, 16) per event; a tune is
  the item ``<bos> p67 d4 p69 d2 ... <eos>``. Augmentation transposes training tunes by
  a few semitones (key-transposed copies), so the model learns intervals in every key.
* chorale (four voices on an eighth-note grid): per step, soprano, alto, tenor, bass
  tokens, each ``p<midi>`` (a note starts), ``_`` (the previous note is held) or ``rest``.

Modules: ``music_tokens`` (this encoding), ``music_io`` (files), ``music_metrics``; this one
loads the corpora and holds the ``Composer`` pipeline, and re-exports the others.
A piece decodes to notes ``(onset, duration, pitch)`` in sixteenths; ``write_midi`` writes a
standard MIDI file by hand (format 0, no dependency), ``render_wav`` renders it with a
small additive synthesiser (numpy, written with the stdlib ``wave``), ``piano_roll_png``
draws it. Parsing the music21 corpus needs ``pip install "genlab[music]"``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import DataError
from ..models.sequence.tokenizers import BOS_ID, EOS_ID, PAD_ID, SPECIALS
from .music_io import piano_roll_png, render_wav, write_midi
from .music_metrics import (estimate_key, in_key_share, music_metrics, nll_per_note,
                            repetition_share)
from .music_tokens import (DURATIONS, HIGH, KK_MAJOR, KK_MINOR, LOW, MAJOR, MINOR, VOCAB,
                           Note, chorale_notes, chorale_tokens, ids_to_notes, melody_notes,
                           melody_tokens, tokenizer)

__all__ = [  # the encoding, output and metrics live in music_tokens / music_io / music_metrics
    "DURATIONS", "HIGH", "KK_MAJOR", "KK_MINOR", "LOW", "MAJOR", "MINOR", "VOCAB", "Note", "tokenizer",
    "melody_tokens", "melody_notes", "chorale_tokens", "chorale_notes", "ids_to_notes",
    "write_midi", "render_wav", "piano_roll_png",
    "estimate_key", "in_key_share", "repetition_share", "music_metrics", "nll_per_note",
    "folk_events", "chorale_voices", "sequences_to_splits", "folk_splits", "chorale_splits",
    "is_music_model", "Composer", "write_samples",
]


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
    from ..data.dataset import Dataset

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


# ----------------------------------------------------------------------------- pipeline
def is_music_model(model: Any) -> bool:
    return tuple(getattr(model.config, "vocab", None) or ()) == VOCAB


class Composer:
    """Compose pieces with a music-trained sequence model and write MIDI/WAV/PNG.

    Example::

        comp = Composer.from_run("runs/lstm-folk")
        paths = comp(4, out="out/", temperature=0.9)
    """

    def __init__(self, model: Any, *, bpm: float = 120):
        if not is_music_model(model):
            raise ValueError("this model was not trained on genlab's music tokens (--data folk or chorales)")
        self.model, self.bpm = model, bpm

    @classmethod
    def from_run(cls, path: str | Path, **kw: Any) -> "Composer":
        from ..base import load

        return cls(load(path), **kw)

    def compose(self, n: int, *, generator: torch.Generator | None = None, max_len: int | None = None,
                **sample_kw: Any) -> list[list[Note]]:
        ids = self.model.sample(n, generator=generator, max_len=max_len, **sample_kw)
        return [ids_to_notes(row) for row in ids.tolist()]

    def __call__(self, n: int, *, out: str | Path, generator: torch.Generator | None = None,
                 prefix: str = "piece", wav: bool = True, png: bool = True, **sample_kw: Any) -> list[Path]:
        out = Path(out)
        paths = []
        for i, notes in enumerate(self.compose(n, generator=generator, **sample_kw)):
            base = out / f"{prefix}_{i}"
            paths.append(write_midi(notes, base.with_suffix(".mid"), bpm=self.bpm))
            if wav:
                paths.append(render_wav(notes, base.with_suffix(".wav"), bpm=self.bpm))
            if png:
                paths.append(piano_roll_png(notes, base.with_suffix(".png"), title=f"{prefix} {i}"))
        return paths


def write_samples(model: Any, x: torch.Tensor, path: str | Path) -> bool:
    """``genlab sample RUN -o x.mid`` / ``.wav``: write music samples (one file per sample
    beside ``path``: ``x_0.mid``...). Returns False if the model or suffix is not musical."""
    path = Path(path)
    if path.suffix.lower() not in (".mid", ".midi", ".wav") or not is_music_model(model):
        return False
    for i, row in enumerate(x.tolist()):
        notes = ids_to_notes(row)
        target = path.with_name(f"{path.stem}_{i}{path.suffix}")
        (write_midi if path.suffix.lower() != ".wav" else render_wav)(notes, target)
    return True
