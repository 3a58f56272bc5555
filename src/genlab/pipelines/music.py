"""Music composition with sequence models: melodies and chorales as token sequences,
MIDI / WAV / piano-roll output and music metrics.

Encoding (all on a sixteenth-note grid):

* melody: one pitch token (``p60`` = MIDI 60, or ``rest``) then one duration token
  (``d1``..``d16`` sixteenths, snapped to 1, 2, 3, 4, 6, 8, 12, 16) per event; a tune is
  the item ``<bos> p67 d4 p69 d2 ... <eos>``. Augmentation transposes training tunes by
  a few semitones (key-transposed copies), so the model learns intervals in every key.
* chorale (four voices on an eighth-note grid): per step, soprano, alto, tenor, bass
  tokens, each ``p<midi>`` (a note starts), ``_`` (the previous note is held) or ``rest``.

A piece decodes to notes ``(onset, duration, pitch)`` in sixteenths; ``write_midi`` writes a
standard MIDI file by hand (format 0, no dependency), ``render_wav`` renders it with a
small additive synthesiser (numpy, written with the stdlib ``wave``), ``piano_roll_png``
draws it. Parsing the music21 corpus needs ``pip install "genlab[music]"``.
"""
from __future__ import annotations

import json
import math
import os
import struct
import wave
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..models.sequence.tokenizers import BOS_ID, EOS_ID, PAD_ID, SPECIALS, WordTokenizer

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
    tunes = []
    for p in paths:
        try:
            tunes.append(_events(m21.converter.parse(p)))
        except Exception:  # a tune music21 cannot read is skipped, not fatal
            continue
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(tunes))
    return tunes


def chorale_voices(n: int | None = None) -> list[list[list[tuple[int | None, int]]]]:
    """Four-part Bach chorales (music21 corpus), voices S/A/T/B as events; cached."""
    m21 = _require_music21()
    cache = _cache_dir() / f"chorales_{n or 'all'}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    out = []
    for i, score in enumerate(m21.corpus.chorales.Iterator()):
        if n and len(out) >= n:
            break
        if len(score.parts) == 4:
            out.append([_events(p) for p in score.parts])
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


# ----------------------------------------------------------------------------- output
def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def write_midi(notes: Sequence[Note], path: str | Path, *, bpm: float = 120, program: int = 0) -> Path:
    """A format-0 standard MIDI file (4 ticks per sixteenth = 16 per quarter)."""
    path = Path(path)
    ticks = 4
    evs = []
    for on, dur, pitch in notes:
        evs.append((on * ticks, 1, 0x90, pitch, 80))
        evs.append(((on + dur) * ticks, 0, 0x80, pitch, 0))
    evs.sort(key=lambda e: (e[0], e[1]))
    tempo = round(60_000_000 / bpm)
    body = b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big") + b"\x00" + bytes([0xC0, program])
    t = 0
    for time, _, kind, pitch, vel in evs:
        body += _varlen(time - t) + bytes([kind, pitch, vel])
        t = time
    body += b"\x00\xff\x2f\x00"
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 16) + b"MTrk" + struct.pack(">I", len(body)) + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def render_wav(notes: Sequence[Note], path: str | Path, *, bpm: float = 120, sr: int = 22050) -> Path:
    """Render with a small additive synthesiser (4 decaying harmonics, short attack and
    release) to 16-bit mono WAV."""
    path = Path(path)
    sec16 = 60.0 / bpm / 4
    end = max((on + d for on, d, _ in notes), default=1)
    out = np.zeros(int((end * sec16 + 0.5) * sr) + 1, dtype=np.float64)
    for on, dur, pitch in notes:
        n = int(dur * sec16 * sr)
        t = np.arange(n + int(0.1 * sr)) / sr
        f = 440.0 * 2 ** ((pitch - 69) / 12)
        tone = sum(a * np.sin(2 * np.pi * f * h * t) for h, a in ((1, 1.0), (2, 0.5), (3, 0.25), (4, 0.12)))
        env = np.minimum(1.0, t / 0.01) * np.exp(-3.0 * t)
        env[n:] *= np.linspace(1, 0, len(t) - n)  # release
        s = int(on * sec16 * sr)
        out[s:s + len(t)] += (tone * env)[:len(out) - s]
    peak = np.abs(out).max() or 1.0
    pcm = (out / peak * 0.8 * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


def piano_roll_png(notes: Sequence[Note], path: str | Path, *, title: str = "") -> Path:
    """A piano-roll picture (time in beats against MIDI pitch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    for on, dur, pitch in notes:
        ax.add_patch(__import__("matplotlib.patches", fromlist=["Rectangle"]).Rectangle(
            (on / 4, pitch - 0.4), dur / 4, 0.8, color="tab:blue"))
    if notes:
        ax.set_xlim(0, max(on + d for on, d, _ in notes) / 4)
        ax.set_ylim(min(p for *_, p in notes) - 2, max(p for *_, p in notes) + 2)
    ax.set_xlabel("beat"), ax.set_ylabel("MIDI pitch"), ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


# ----------------------------------------------------------------------------- metrics
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
