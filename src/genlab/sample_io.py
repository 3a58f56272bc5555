"""Chunked sampling and streamed sample files (what ``genlab sample`` runs).

``genlab sample RUN -n 10000000 -o x.npy`` must not hold ten million samples at once, so
samples are drawn in chunks of ``chunk_size_for(model)`` (1,024, fewer for large samples)
and each chunk goes straight to the output:

* ``.npy``: the header for the full ``(n, ...)`` array is written first
  (``numpy.lib.format.open_memmap``), then each chunk into its rows (refused up front
  when the disk has too little free space for the whole array);
* ``.csv``: rows appended chunk by chunk;
* ``.txt`` or the terminal (text models): lines appended chunk by chunk;
* ``.png`` / ``.jpg`` image grids: capped at ``MAX_GRID`` images and ``MAX_GRID_PIXELS``
  pixels (a million 8x8 digits would make a 49,001 x 49,001 px grid);
* other formats come from the writer registered for the suffix (``SAMPLE_WRITERS``, see
  ``write_samples``): a Bayesian network's CSV with state labels (streamed chunk by
  chunk), SMILES ``.smi``, music ``.mid``/``.wav`` (one file per sample, all samples at
  once, at most ``MAX_IN_MEMORY`` of them).

Files are written to a hidden temporary file beside the target and moved into place at
the end, so an interrupted run leaves no half-written output; an existing file is never
replaced unless ``overwrite=True`` (``--overwrite``).

Reproducibility: chunk ``i`` (samples ``[i*B, (i+1)*B)`` with ``B = chunk_size``) is drawn
with its own ``torch.Generator`` seeded from ``(seed, i)``; chunk 0 uses ``seed`` itself.
So the output is a deterministic function of ``(model, seed, n)`` (``B`` depends on the
model only, never on ``n``), and

* for ``n <= B`` it is exactly ``model.sample(n, generator=torch.Generator().manual_seed(seed))``,
  the same as before sampling was chunked;
* the first ``k`` samples of ``-n N`` equal ``-n k`` whenever ``k`` is a multiple of ``B``
  (every chunk of ``-n k`` is a full chunk of ``-n N`` too). For other ``k`` the chunk
  holding sample ``k`` is drawn at a different size in the two runs, and most models'
  draws depend on the batch size (torch fills random tensors in blocks), so the two may
  differ from the start of that chunk on.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, TextIO

import numpy as np
import torch

from .capabilities import SAMPLE_WRITERS
from .errors import GenlabError

DEFAULT_CHUNK = 1024
CHUNK_BYTES = 64 * 2**20  # one chunk of samples holds at most about this many bytes
MAX_GRID = 4096  # images in one .png/.jpg grid
MAX_GRID_PIXELS = 64_000_000  # pixels in one grid (about 8,000 x 8,000)
MAX_PRINT = 1000  # samples printed to a terminal (a pipe or file gets any number)
MAX_IN_MEMORY = 10_000  # samples a family format that takes them all at once gets
PROGRESS_EVERY_S = 5.0  # seconds between progress lines when stderr is not a terminal
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PER_ROW_OPTIONS = ("y", "prompt", "low_res")  # sample() options that may hold one entry per sample


class SampleOutputError(GenlabError, ValueError):
    """The requested output cannot be written (exists, too large, wrong format for the
    model); the command line shows it as a one-line usage error."""


# ----------------------------------------------------------------------------- drawing
def chunk_size_for(model: Any) -> int:
    """Samples per chunk for ``model``: ``DEFAULT_CHUNK`` (1,024), or fewer so that a chunk
    of ``config.data_shape`` samples stays under ``CHUNK_BYTES`` (64 MiB at 8 bytes an
    entry). A power of two, and a function of the model only (never of ``n``)."""
    from .capabilities import tags_of

    shape = tags_of(model).sample_shape
    if not shape:
        return DEFAULT_CHUNK
    per_sample = 8 * math.prod(int(s) for s in shape)
    fit = max(1, CHUNK_BYTES // max(per_sample, 1))
    return min(DEFAULT_CHUNK, 1 << (fit.bit_length() - 1))


def chunk_generator(seed: int, index: int) -> torch.Generator:
    """The generator of chunk ``index``: ``manual_seed(seed)`` for chunk 0, else a seed
    mixed from ``(seed, index)`` by ``numpy.random.SeedSequence``."""
    seed = _check_seed(seed)
    if index == 0:
        return torch.Generator().manual_seed(seed)
    hi, lo = np.random.SeedSequence([seed % 2**64, int(index)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(hi) << 32 | int(lo))


def iter_chunks(model: Any, n: int, *, seed: int = 0, chunk_size: int | None = None,
                progress: bool | None = None, only: Any = None, **sample_kwargs: Any) -> Iterator[Any]:
    """Draw ``n`` samples from ``model`` chunk by chunk (see the module docstring for the
    seeding), yielding each chunk as ``model.sample`` returns it.

    Args:
        model: any genlab model.
        n: number of samples (>= 1).
        seed: the seed; chunk ``i`` is drawn with ``chunk_generator(seed, i)``.
        chunk_size: samples per chunk (default ``chunk_size_for(model)``).
        progress: a progress bar on stderr; ``None``: when there are several chunks.
            On a terminal it is a tqdm bar, otherwise a line every ``PROGRESS_EVERY_S`` s.
        only: draw only the chunks whose index it accepts (a predicate), yielding
            ``(index, chunk)`` pairs (how the processes of a torchrun split the work).
        **sample_kwargs: passed to ``model.sample`` (e.g. ``temperature``). Per-sample
            options (``y``, ``prompt``, ``low_res``) holding ``n`` entries are sliced per
            chunk; a conditional model without ``y`` cycles through its classes across
            the chunks as one call would.
    Yields:
        tensors (or arrays) of ``chunk_size`` samples, the last one possibly shorter.
    """
    n = _check_n(n)
    _check_seed(seed)
    b = _chunk(model, chunk_size)
    n_chunks = -(-n // b)
    cycle = n_chunks > 1 and sample_kwargs.get("y") is None and _n_classes(model) > 0 \
        and "y" in inspect.signature(model.sample).parameters
    per_row = {k: v for k, v in sample_kwargs.items()
               if k in PER_ROW_OPTIONS and _rows(k, v) == n and n_chunks > 1}
    return _draw(model, n, b, seed, progress if progress is not None else n_chunks > 1, cycle,
                 per_row, sample_kwargs, only)


def _draw(model: Any, n: int, b: int, seed: int, progress: bool, cycle: bool,
          per_row: dict[str, Any], sample_kwargs: dict[str, Any], only: Any = None) -> Iterator[Any]:
    """The generator behind ``iter_chunks`` (its arguments already checked); with ``only``
    (a predicate on the chunk index) just those chunks, as ``(index, chunk)`` pairs."""
    n_chunks = -(-n // b)
    with _progress(n, progress) as bar:
        for i in range(n_chunks):
            start, m = i * b, min(b, n - i * b)
            if only is not None and not only(i):
                continue
            kw = dict(sample_kwargs)
            kw.update({k: v[start:start + m] for k, v in per_row.items()})
            if cycle:
                kw["y"] = torch.arange(start, start + m) % _n_classes(model)
            x = model.sample(m, generator=chunk_generator(seed, i), **kw)
            if len(x) != m:
                raise GenlabError(f"{type(model).__name__}.sample({m}) returned {len(x)} samples")
            yield x if only is None else (i, x)
            bar.update(m)


def sample_chunked(model: Any, n: int, *, seed: int = 0, chunk_size: int | None = None,
                   progress: bool | None = None, **sample_kwargs: Any) -> Any:
    """All ``n`` samples of ``iter_chunks(...)`` in one tensor (or array): the in-memory
    twin of ``write_samples`` (same seeding, so the same samples)."""
    parts = list(iter_chunks(model, n, seed=seed, chunk_size=chunk_size, progress=progress,
                             **sample_kwargs))
    return _concat(parts)


# ----------------------------------------------------------------------------- writing
class SampleJob:
    """One ``write_samples`` call as a sample writer sees it (see
    ``genlab.capabilities.SAMPLE_WRITERS``): the model and its tags, how many samples,
    the target ``path``, and helpers that keep every writer safe (a hidden temporary
    file or folder moved into place only when the writer succeeds, never replacing a
    file unless ``overwrite``)."""

    def __init__(self, model: Any, tags: Any, n: int, path: Path, *, overwrite: bool,
                 chunk_size: int, draw: dict[str, Any], drawn: Path | None = None):
        self.model, self.tags, self.n, self.path = model, tags, n, path
        self.overwrite, self.chunk_size, self._draw = overwrite, chunk_size, draw
        self._drawn = drawn  # a folder of chunks drawn by the processes of a torchrun

    @property
    def seed(self) -> int:
        """The seed of chunk 0 (``genlab sample --seed``)."""
        return int(self._draw["seed"])

    @property
    def sample_options(self) -> dict[str, Any]:
        """The model's own ``sample`` options given for this job (``--sampler``, ``--y``, ...)."""
        return {k: v for k, v in self._draw.items() if k not in ("seed", "chunk_size", "progress")}

    def chunks(self) -> Iterator[Any]:
        """The samples, chunk by chunk (seeded as the module docstring says)."""
        if self._drawn is not None:
            return _read_chunks(self._drawn)
        return iter_chunks(self.model, self.n, **self._draw)

    def all_samples(self) -> Any:
        """Every sample at once, for formats that need them together; refused beyond
        ``MAX_IN_MEMORY``."""
        if self.n > MAX_IN_MEMORY:
            raise SampleOutputError(
                f"-o {self.path}: {self.path.suffix} files are written from all samples at once, at "
                f"most {MAX_IN_MEMORY:,} (got -n {self.n:,}); use a smaller -n")
        return _concat(list(self.chunks()))

    def text(self, x: Any) -> list[str]:
        """Samples as strings: SMILES for molecule models, ``samples_to_text`` otherwise."""
        return _text_fn(self.model, self.tags)(x)

    def replacing(self) -> Any:
        """A context manager giving a hidden temporary file beside ``path``, moved onto
        ``path`` when the block ends without an error."""
        return _replacing(self.path, self.overwrite)

    @contextlib.contextmanager
    def folder(self) -> Iterator[Path]:
        """A hidden temporary folder beside ``path``; the files written into it are moved
        beside ``path`` when the block ends without an error (refused, before any is moved,
        if one would replace an existing file and not ``overwrite``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".parts"))
        try:
            yield tmpdir
            _move_out(tmpdir, self.path.parent, self.overwrite)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def write_samples(model: Any, n: int, out: str | os.PathLike | None = None, *, seed: int = 0,
                  overwrite: bool = False, chunk_size: int | None = None, progress: bool | None = None,
                  stdout: TextIO | None = None, **sample_kwargs: Any) -> str | None:
    """Draw ``n`` samples in chunks and stream them to ``out`` (what ``genlab sample`` does).

    The format comes from the suffix of ``out``, written by the first sample writer
    registered for it that applies to the model's tags (``SAMPLE_WRITERS``; ``writers_for``
    lists them): ``.npy`` and ``.csv`` for every model, ``.png``/``.jpg`` grids for image
    models, ``.txt`` for text models, ``.smi`` for molecule models, labelled ``.csv`` for a
    Bayesian network, ``.mid``/``.wav`` for music models, and what other families register.

    Args:
        model: any genlab model.
        n: number of samples.
        out: the output file, or ``None``: print text models' samples, write image
            models' to ``samples.png`` and table models' to ``samples.csv``.
        seed: see the module docstring for how chunks are seeded.
        overwrite: replace an existing output file (else ``SampleOutputError``).
        chunk_size: samples per chunk (default ``chunk_size_for(model)``).
        progress: progress bar on stderr (``None``: when there are several chunks).
        stdout: where text samples are printed (default ``sys.stdout``).
        **sample_kwargs: options of ``model.sample`` (``temperature``, ``y``, ...).
    Returns:
        the line to show (``"wrote N samples to OUT"``), or ``None`` when printing.
    Raises:
        SampleOutputError: the output exists, is too large for its format, or the
            model's samples cannot be written in it; checked before sampling where the
            format allows.
    """
    from .capabilities import SAMPLE_WRITERS, tags_of

    n = _check_n(n)
    _check_seed(seed)
    stdout = sys.stdout if stdout is None else stdout
    tags = tags_of(model)
    draw = dict(seed=seed, chunk_size=chunk_size, progress=progress, **sample_kwargs)
    if out is None and tags.text_output:
        from .train import distributed

        if distributed.rank_and_world()[0] != 0:  # under torchrun rank 0 prints, once
            return None
        return _print_text(model, tags, n, stdout, draw)
    if out is None:
        default = {"image": "samples.png", "table": "samples.csv", "discrete-table": "samples.csv"}
        if tags.modality not in default:
            raise SampleOutputError(f"give -o for {type(model).__name__} samples: one of "
                                    + ", ".join(writers_for(model)))
        out = default[tags.modality]
    path = Path(out)
    _check_target(path, overwrite)
    suffix = path.suffix.lower()
    entry = SAMPLE_WRITERS.for_name(suffix, tags)
    if entry is None:
        raise SampleOutputError(f"-o {path}: {type(model).__name__} samples ({tags.modality}) can be "
                                f"written as {', '.join(writers_for(model))}")
    from .train import distributed

    if distributed.rank_and_world()[1] > 1:
        return _write_distributed(model, tags, n, path, entry, overwrite=overwrite, chunk_size=chunk_size, draw=draw)
    job = SampleJob(model, tags, n, path, overwrite=overwrite, chunk_size=_chunk(model, chunk_size), draw=draw)
    entry.fn(job)
    return f"wrote {n} samples to {path}"


def _write_distributed(model: Any, tags: Any, n: int, path: Path, entry: Any, *, overwrite: bool,
                       chunk_size: int | None, draw: dict[str, Any]) -> str | None:
    """``write_samples`` under torchrun: process ``r`` of ``w`` draws the chunks ``i`` with
    ``i % w == r`` (each with its own ``(seed, i)`` generator, so the samples are those of one
    process) into a hidden folder beside ``path`` (a shared file system across machines);
    then rank 0 runs the writer over them in order and removes the folder. Returns the line
    to show on rank 0, ``None`` elsewhere."""
    from .train import distributed

    rank, world = distributed.rank_and_world()
    distributed.setup()
    shared = path.parent / f".{path.name}.torchrun-chunks"
    if rank == 0:
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir(parents=True)
    distributed.barrier()
    kw = dict(draw)
    kw["progress"] = kw.get("progress") if rank == 0 else False
    try:
        for i, x in iter_chunks(model, n, only=lambda i: i % world == rank, **kw):
            _save_chunk(shared / f"chunk_{i:09d}", x)
        distributed.barrier()
        if rank != 0:
            distributed.barrier()
            return None
        job = SampleJob(model, tags, n, path, overwrite=overwrite, chunk_size=_chunk(model, chunk_size),
                        draw=draw, drawn=shared)
        entry.fn(job)
    finally:
        if rank == 0:
            shutil.rmtree(shared, ignore_errors=True)
    distributed.barrier()
    return f"wrote {n} samples to {path} ({world} processes)"


def _save_chunk(stem: Path, x: Any) -> None:
    if torch.is_tensor(x):
        torch.save(x.detach().cpu(), stem.with_suffix(".pt"))
    else:
        np.save(stem.with_suffix(".npy"), np.asarray(x), allow_pickle=False)


def _read_chunks(folder: Path) -> Iterator[Any]:
    """The chunks saved by ``_write_distributed``, in chunk order."""
    for f in sorted(folder.iterdir()):
        if f.suffix == ".pt":
            yield torch.load(f, weights_only=True)
        elif f.suffix == ".npy":
            yield np.load(f, allow_pickle=False)


def writers_for(model: Any) -> list[str]:
    """The output suffixes ``write_samples`` can write ``model``'s samples in."""
    from .capabilities import SAMPLE_WRITERS, tags_of

    return [e.name for e in SAMPLE_WRITERS.applicable(tags_of(model))]


def _print_text(model: Any, tags: Any, n: int, stdout: TextIO, draw: dict[str, Any]) -> None:
    """Print text samples (a line of dashes after each), stopping quietly on a closed pipe."""
    if n > MAX_PRINT and _isatty(stdout):
        raise SampleOutputError(f"-n {n:,} would print {n:,} samples to the terminal; it shows "
                                f"at most {MAX_PRINT:,}: use -o samples.txt (or pipe the output)")
    to_text = _text_fn(model, tags)
    chunks = iter_chunks(model, n, **draw)
    try:
        for x in chunks:
            for t in to_text(x):
                print(t, file=stdout)
                print("-" * 40, file=stdout)
            stdout.flush()
    except BrokenPipeError:  # e.g. `genlab sample RUN -n 100000 | head`: stop quietly
        if stdout is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        chunks.close()
    return None


# ----------------------------------------------------------------------------- the writers
def _tensor_chunks(job: SampleJob) -> Iterator[Any]:
    for x in job.chunks():
        if not (torch.is_tensor(x) or isinstance(x, np.ndarray)):
            raise SampleOutputError(f"-o {job.path}: {type(job.model).__name__} samples cannot be written as "
                                    f"{job.path.suffix}")
        yield x


@SAMPLE_WRITERS.register(".npy", order=200)
def _npy_writer(job: SampleJob) -> None:
    """Any model's samples as one ``(n, ...)`` array, streamed into a memory map."""
    _write_npy(_tensor_chunks(job), job.n, job.path, job.overwrite)


@SAMPLE_WRITERS.register(".csv", order=200)
def _csv_writer(job: SampleJob) -> None:
    """Any model's samples as rows of numbers (each sample flattened)."""
    with job.replacing() as tmp, open(tmp, "w", encoding="utf-8") as f:
        for x in _tensor_chunks(job):
            np.savetxt(f, _numpy(x).reshape(len(x), -1), delimiter=",", fmt="%.6g")


@SAMPLE_WRITERS.register(".png", requires={"modality": "image"}, aliases=(".jpg", ".jpeg"))
def _grid_writer(job: SampleJob) -> None:
    """Image samples as one grid (at most ``MAX_GRID`` images and ``MAX_GRID_PIXELS``)."""
    from .imaging import save_grid

    _check_grid(job.tags, job.n, job.path)
    x = torch.cat([torch.as_tensor(c) for c in _tensor_chunks(job)])
    if x.dim() != 4:
        raise SampleOutputError("this model does not make images: use -o samples.csv or .npy")
    with job.replacing() as tmp:
        save_grid(x, tmp)


@SAMPLE_WRITERS.register(".txt", requires={"text_output": True})
def _text_writer(job: SampleJob) -> None:
    """Text samples, one per line (SMILES for molecule models)."""
    with job.replacing() as tmp, open(tmp, "w", encoding="utf-8") as f:
        for x in job.chunks():
            f.writelines(t + "\n" for t in job.text(x))


def grid_size_px(n: int, shape: tuple[int, ...]) -> tuple[int, int]:
    """``(width, height)`` in pixels of the grid ``imaging.save_grid`` makes of ``n``
    images of ``shape`` ``(C, H, W)`` (default layout: ``ceil(sqrt(n))`` per row, tiles
    upscaled to at least 48 px, 1 px padding)."""
    from .imaging import MIN_TILE_PX

    _, h, w = (int(s) for s in shape)
    scale = max(1, math.ceil(MIN_TILE_PX / min(h, w)))
    nrow = min(math.ceil(math.sqrt(n)), n)
    rows = math.ceil(n / nrow)
    return nrow * w * scale + nrow + 1, rows * h * scale + rows + 1


# ----------------------------------------------------------------------------- helpers
def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return int(n)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not -2**63 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [-2**63, 2**64), got {seed!r}")
    return int(seed)


def _chunk(model: Any, chunk_size: Any) -> int:
    if chunk_size is None:
        return chunk_size_for(model)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return int(chunk_size)


def _n_classes(model: Any) -> int:
    from .capabilities import tags_of

    return tags_of(model).num_classes


def _rows(key: str, v: Any) -> int | None:
    """How many samples the per-sample option ``key`` holds entries for (``None``: it is
    shared by all, e.g. one prompt as text or as 1-D ids)."""
    if v is None or isinstance(v, (str, bytes, int, float)):
        return None
    if torch.is_tensor(v) or isinstance(v, np.ndarray):
        if v.ndim == 0 or (key == "prompt" and v.ndim == 1):
            return None
        return int(v.shape[0])
    if isinstance(v, (list, tuple)):
        if key == "prompt" and not all(isinstance(t, str) for t in v):
            return None
        return len(v)
    return None


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def _concat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    return torch.cat(parts) if torch.is_tensor(parts[0]) else np.concatenate(parts)


def _text_fn(model: Any, tags: Any) -> Any:
    """Samples -> strings: SMILES for molecule models, ``samples_to_text`` otherwise."""
    if tags.modality == "molecule":
        from .pipelines.molecules import to_smiles

        return lambda x: to_smiles(model, x)
    return model.samples_to_text


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _progress(total: int, enabled: bool) -> Any:
    """Progress over ``total`` samples on stderr: a bar on a terminal, else a plain line
    every ``PROGRESS_EVERY_S`` seconds (see ``genlab.progress``)."""
    from .progress import Progress

    return Progress(total, "sampling", "sample", enabled=enabled, every_s=PROGRESS_EVERY_S or None)


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse a folder, and an existing file unless ``overwrite``."""
    if path.is_dir():
        raise SampleOutputError(f"-o {path} is a folder: give a file name, e.g. {path / 'samples.npy'}")
    if path.exists() and not overwrite:
        raise SampleOutputError(f"{path} already exists and genlab does not replace files it did "
                                "not write: pass --overwrite to replace it, or choose another -o")


@contextlib.contextmanager
def _replacing(path: Path, overwrite: bool) -> Iterator[Path]:
    """A hidden temporary file beside ``path``, moved onto ``path`` when the block ends
    without an error (and removed when it fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield Path(tmp)
        _check_target(path, overwrite)  # appeared while sampling?
        from .base import default_file_mode

        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_npy(chunks: Iterator[Any], n: int, path: Path, overwrite: bool) -> None:
    """Header for the full ``(n, ...)`` array first, then each chunk into its rows."""
    from numpy.lib.format import open_memmap

    with _replacing(path, overwrite) as tmp:
        mm, pos = None, 0
        for x in chunks:
            a = _numpy(x)
            if mm is None:
                _check_disk(path, n * a[:1].nbytes)  # a memory map on a full disk dies of SIGBUS
                mm = open_memmap(tmp, mode="w+", dtype=a.dtype, shape=(n, *a.shape[1:]))
            elif a.shape[1:] != mm.shape[1:]:
                raise GenlabError(f"a chunk of samples has shape {a.shape[1:]}, the first had {mm.shape[1:]}")
            mm[pos:pos + len(a)] = a
            pos += len(a)
        if mm is None or pos != n:
            raise GenlabError(f"drew {pos} samples, expected {n}")
        mm.flush()
        del mm


def _check_disk(path: Path, need: int) -> None:
    """Refuse to start a file of ``need`` bytes on a disk with less free space."""
    free = shutil.disk_usage(path.parent).free
    if need > free:
        raise SampleOutputError(f"-o {path}: the samples need {need / 2**30:.1f} GiB, the disk has "
                                f"{free / 2**30:.1f} GiB free: use a smaller -n or another folder")


def _check_grid(tags: Any, n: int, path: Path) -> None:
    """Refuse, before sampling, a grid of more than ``MAX_GRID`` images or pixels."""
    shape = tags.sample_shape
    image = shape is not None and len(shape) == 3
    if shape is not None and not image and n > MAX_GRID:
        raise SampleOutputError("this model does not make images: use -o samples.csv or .npy")
    size = grid_size_px(n, tuple(shape)) if image else None
    if n > MAX_GRID:
        px = f" would be {size[0]:,}x{size[1]:,} px" if size else " is too large"
        raise SampleOutputError(f"a grid of {n:,} images{px}; grids hold at most {MAX_GRID:,} images: "
                                f"use -o {path.with_suffix('.npy').name}")
    if size and size[0] * size[1] > MAX_GRID_PIXELS:
        raise SampleOutputError(f"a grid of {n:,} images would be {size[0]:,}x{size[1]:,} px; grids hold "
                                f"at most {MAX_GRID_PIXELS // 10**6} megapixels: use a smaller -n or "
                                f"-o {path.with_suffix('.npy').name}")


def _move_out(tmpdir: Path, dest: Path, overwrite: bool) -> None:
    """Move the files in ``tmpdir`` into ``dest``, refusing (before moving any) to replace
    existing files unless ``overwrite``."""
    files = sorted(p for p in tmpdir.iterdir() if p.is_file())
    taken = [dest / p.name for p in files if (dest / p.name).exists()]
    if taken and not overwrite:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise SampleOutputError(f"{taken[0]}{more} already exists and genlab does not replace files "
                                "it did not write: pass --overwrite to replace it, or choose another -o")
    for p in files:
        os.replace(p, dest / p.name)
