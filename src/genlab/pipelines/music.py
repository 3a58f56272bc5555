"""Music composition with sequence models: melodies and chorales as token sequences,
MIDI / WAV / piano-roll output and music metrics.

Encoding (all on a sixteenth-note grid):

* melody: one pitch token (``p60`` = MIDI 60, or ``rest``) then one duration token
  (``d1``..``d16`` sixteenths, snapped to 1, 2, 3, 4, 6, 8, 12, 16) per event; a tune is
  the item ``<bos> p67 d4 p69 d2 ... <eos>``. Augmentation transposes training tunes by
  a few semitones (key-transposed copies), so the model learns intervals in every key.
* chorale (four voices on an eighth-note grid): per step, soprano, alto, tenor, bass
  tokens, each ``p<midi>`` (a note starts), ``_`` (the previous note is held) or ``rest``.

Where things live (data may not import pipelines, so the encoding sits below them):
``genlab.data.music`` (this encoding and the music21 corpora behind the ``folk`` and
``chorales`` datasets), ``genlab.data.music_io`` (files), ``genlab.metrics.music`` (the
metrics); this module holds the ``Composer`` pipeline and re-exports the others.
A piece decodes to notes ``(onset, duration, pitch)`` in sixteenths; ``write_midi`` writes a
standard MIDI file by hand (format 0, no dependency), ``render_wav`` renders it with a
small additive synthesiser (numpy, written with the stdlib ``wave``), ``piano_roll_png``
draws it. Parsing the music21 corpus needs ``pip install "genlab[music]"``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.music import (DURATIONS, HIGH, KK_MAJOR, KK_MINOR, LOW, MAJOR, MINOR, VOCAB, Note,
                          chorale_notes, chorale_splits, chorale_tokens, chorale_voices, folk_events,
                          folk_splits, ids_to_notes, is_music_model, melody_notes, melody_tokens,
                          sequences_to_splits, tokenizer)
from ..data.music_io import piano_roll_png, render_wav, write_midi, write_samples
from ..metrics.music import (estimate_key, in_key_share, music_metrics, nll_per_note,
                             repetition_share)

__all__ = [  # the encoding, corpora and files live in data.music / data.music_io, the metrics in metrics.music
    "DURATIONS", "HIGH", "KK_MAJOR", "KK_MINOR", "LOW", "MAJOR", "MINOR", "VOCAB", "Note", "tokenizer",
    "melody_tokens", "melody_notes", "chorale_tokens", "chorale_notes", "ids_to_notes",
    "write_midi", "render_wav", "piano_roll_png",
    "estimate_key", "in_key_share", "repetition_share", "music_metrics", "nll_per_note",
    "folk_events", "chorale_voices", "sequences_to_splits", "folk_splits", "chorale_splits",
    "is_music_model", "Composer", "write_samples",
]


# ----------------------------------------------------------------------------- pipeline
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
