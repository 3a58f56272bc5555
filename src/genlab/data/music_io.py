"""Writing notes out: a standard MIDI file by hand (format 0, no dependency), a WAV from a
small additive synthesiser (numpy and the stdlib ``wave``), a piano-roll PNG, and a music
model's samples as such files (``write_samples``, what ``genlab sample -o x.mid`` runs)."""
from __future__ import annotations

import struct
import wave
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..capabilities import SAMPLE_WRITERS
from .music import Note, ids_to_notes, is_music_model

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


def write_samples(model: Any, x: Any, path: str | Path) -> bool:
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


@SAMPLE_WRITERS.register(".mid", requires={"modality": "music"}, aliases=(".midi", ".wav"))
def _music_writer(job: Any) -> None:
    """``genlab sample RUN -o s.mid`` (or ``.wav``) for a music model: one file per sample
    beside the target (``s_0.mid``, ``s_1.mid``, ...), all moved into place at the end."""
    x = job.all_samples()
    with job.folder() as tmpdir:
        write_samples(job.model, x, tmpdir / job.path.name)
