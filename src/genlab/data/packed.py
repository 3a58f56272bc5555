"""Packed datasets: data larger than memory, memory-mapped from disk.

A pack is a folder ``NAME.gldata`` holding, per split, the examples as one ``.npy`` array
in a compact storage type (``uint8`` for 8-bit images, ``float16`` where that is exact,
``int16``/``int32`` token ids, ``float32`` otherwise), the labels as ``int64``, and
``pack.json`` (format, kind, shape, storage, value range, classes, columns and the
dataset's ``meta``), written last: a folder without it is an unfinished pack.

``genlab data pack SOURCE -o NAME.gldata`` makes one from any dataset genlab loads (a
registered name, a ``.npy``/``.csv``/``.txt``/``.smi`` file) or, streamed image by image
in bounded memory, from a folder of images of any size; the same train/val/test split as
loading the source directly. Packing a folder is resumable: progress is checkpointed
every chunk in ``pack-progress.json``, and running the command again continues where an
interrupted one stopped (the result is byte-identical to an uninterrupted pack).

``--data NAME.gldata`` (``load_splits``) gives ``PackedDataset`` splits whose ``x`` is a
``PackedArray``: indexing it reads and decodes only those rows (``uint8`` -> ``float32`` in
``[0, 1]``), so training touches the disk as batches need it and the resident memory stays
bounded by what the OS caches.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import DataError, GenlabError
from .dataset import Dataset

FORMAT = "genlab-packed"
VERSION = 1
SUFFIX = ".gldata"
META_FILE = "pack.json"
PROGRESS_FILE = "pack-progress.json"
SPLITS = ("train", "val", "test")
CHUNK = 512  # examples per write (and per progress checkpoint) when streaming a folder


class PackError(GenlabError, ValueError):
    """A pack that cannot be written or read (names the folder and what to do)."""


def is_packed(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a pack folder (finished or not)."""
    p = Path(path)
    return p.is_dir() and (p.suffix == SUFFIX or (p / META_FILE).is_file() or (p / PROGRESS_FILE).is_file())


# ----------------------------------------------------------------------------- reading
class PackedArray:
    """The ``x`` of a packed split: rows read from disk and decoded on indexing.

    Supports what training and evaluation ask of ``x``: ``len``, ``shape``, ``dtype``,
    ``dim()``, indexing by an int, slice, index tensor or array (returning a decoded
    ``torch.Tensor``), and ``min()``/``max()`` (recorded at pack time). ``binarize``
    thresholds as rows are read. Rows are read with ``os.pread`` (runs of consecutive rows
    in one call), not through a memory map: the pages read stay in the OS cache, outside
    this process's resident memory, and no read-ahead drags in rows nobody asked for. The
    file is opened once per process (a forked worker opens its own)."""

    def __init__(self, path: Path, kind: str, stats: dict[str, float], threshold: float | None = None):
        self.path, self.kind, self.stats, self.threshold = Path(path), kind, stats, threshold
        try:
            with open(self.path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
                self._offset = f.tell()
            size = self.path.stat().st_size
        except (OSError, ValueError) as e:
            raise PackError(f"{self.path}: cannot read the packed array ({e}); pack the data again") from None
        if fortran or not shape:
            raise PackError(f"{self.path}: not a packed array (Fortran order or no rows); pack the data again")
        self._shape, self.storage = tuple(int(v) for v in shape), np.dtype(dtype)
        self._row = int(np.prod(self._shape[1:], dtype=np.int64)) * self.storage.itemsize
        if size < self._offset + self._shape[0] * self._row:
            raise PackError(f"{self.path} is truncated ({size:,} bytes for {self._shape[0]:,} rows of "
                            f"{self._row:,}): pack the data again")
        self._fd: int | None = None
        self._pid = -1

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def __getstate__(self) -> dict[str, Any]:  # picklable for DataLoader workers: no descriptor
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self._shape)

    @property
    def dtype(self) -> torch.dtype:
        return torch.int64 if self.kind == "sequence" else torch.float32

    def dim(self) -> int:
        return len(self._shape)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def __len__(self) -> int:
        return self._shape[0]

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (int64, in range) in that order, read in runs of consecutive rows
        straight into the result (sorted requests) or into a buffer then put in order."""
        out = np.empty((len(rows), *self._shape[1:]), dtype=self.storage)
        if not len(rows):
            return out
        ascending = bool(np.all(np.diff(rows) == 1)) if len(rows) > 1 else True
        order = None if ascending else np.argsort(rows, kind="stable")
        srt = rows if order is None else rows[order]
        dest = out if order is None else np.empty_like(out)
        flat = dest.reshape(len(rows), -1).view(np.uint8)
        fd = self._file()
        starts = np.concatenate([[0], np.flatnonzero(np.diff(srt) != 1) + 1, [len(srt)]])
        for a, b in zip(starts[:-1], starts[1:]):
            first, want = int(srt[a]), (int(b) - int(a)) * self._row
            got = os.preadv(fd, [memoryview(flat[a:b]).cast("B")], self._offset + first * self._row)
            if got != want:
                raise PackError(f"{self.path}: short read at row {first} (is the file being changed?)")
        if order is not None:
            out[order] = dest
        return out

    def __getitem__(self, index: Any) -> torch.Tensor:
        n = self._shape[0]
        if torch.is_tensor(index):
            index = index.numpy()
        if isinstance(index, (int, np.integer)):
            i = int(index) + (n if index < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {index} is out of range for {n} rows")
            return self._decode(self._read_rows(np.array([i], dtype=np.int64))[0])
        if isinstance(index, slice):
            rows = np.arange(*index.indices(n), dtype=np.int64)
        else:
            rows = np.asarray(index)
            if rows.dtype == np.bool_:
                rows = np.flatnonzero(rows)
            if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
                raise IndexError(f"a packed array is indexed by rows (int, slice, 1-d ints or mask), got {index!r}")
            rows = np.where(rows < 0, rows + n, rows).astype(np.int64)
            if len(rows) and (rows.min() < 0 or rows.max() >= n):
                raise IndexError(f"row index out of range for {n} rows")
        return self._decode(self._read_rows(rows))

    def _decode(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        if self.kind == "sequence":
            return t.long()
        if self.storage == np.uint8:
            t = t.float().div_(255.0)
        else:
            t = t.float()
        return (t > self.threshold).float() if self.threshold is not None else t

    def min(self) -> torch.Tensor:
        v = self.stats["min"] if self.threshold is None else float(self.stats["min"] > self.threshold)
        return torch.tensor(v, dtype=self.dtype)

    def max(self) -> torch.Tensor:
        v = self.stats["max"] if self.threshold is None else float(self.stats["max"] > self.threshold)
        return torch.tensor(v, dtype=self.dtype)

    def materialize(self) -> torch.Tensor:
        """Every row decoded into memory (what an operation on the whole array needs)."""
        return self[:]

    def __repr__(self) -> str:
        return f"PackedArray({self.path.name}, {tuple(self.shape)}, stored {self.storage})"


@dataclasses.dataclass(repr=False)
class PackedDataset(Dataset):
    """A ``Dataset`` whose ``x`` is a ``PackedArray`` (rows read on demand); its labels are
    in memory. A subset of it (``limit``, a split, a test sample) is an ordinary in-memory
    ``Dataset``."""

    def __post_init__(self) -> None:
        if not isinstance(self.x, PackedArray):  # a subset: decoded rows in memory
            self.__class__ = Dataset
            Dataset.__post_init__(self)

    def subset(self, index: Sequence[int] | torch.Tensor | slice) -> Dataset:
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long)
        return Dataset(self.x[index], None if self.y is None else self.y[index], kind=self.kind, name=self.name,
                       classes=self.classes, columns=self.columns, meta=dict(self.meta))

    def binarize(self, threshold: float = 0.5) -> "PackedDataset":
        x = PackedArray(self.x.path, self.kind, self.x.stats, threshold=threshold)
        return dataclasses.replace(self, x=x, meta=dict(self.meta, binarized=threshold))


#: a split whose decoded examples take less than this many bytes is loaded into memory (an
#: ordinary ``Dataset``); larger ones stay memory-mapped (``GENLAB_PACK_IN_MEMORY_BYTES``)
IN_MEMORY_BYTES = 512 * 2**20


def _in_memory_limit() -> int:
    v = os.environ.get("GENLAB_PACK_IN_MEMORY_BYTES")
    try:
        return IN_MEMORY_BYTES if v is None else int(v)
    except ValueError:
        raise PackError(f"GENLAB_PACK_IN_MEMORY_BYTES must be a number of bytes, got {v!r}") from None


def packed_source(path: str | os.PathLike) -> str | None:
    """The dataset a pack was made from (a registered name, a path), or ``None``."""
    try:
        return json.loads((Path(path) / META_FILE).read_text()).get("source") or None
    except (OSError, json.JSONDecodeError):
        return None


def load_packed(path: str | os.PathLike, *, binarize: bool = False, limit: int | None = None,
                in_memory_bytes: int | None = None) -> dict[str, Dataset]:
    """The splits of a pack folder: a split smaller than ``in_memory_bytes`` decoded
    (default ``IN_MEMORY_BYTES``, 512 MiB) is read into memory, a larger one is a
    ``PackedDataset`` read row by row; with ``limit``, in-memory subsets.

    Raises:
        PackError: not a pack, an unfinished one (run ``genlab data pack`` again), a newer
            format, or a damaged file.
    """
    root = Path(path)
    meta_file = root / META_FILE
    if not meta_file.is_file():
        if (root / PROGRESS_FILE).is_file():
            raise PackError(f"{root} is an unfinished pack: run `genlab data pack` with the same source and "
                            "-o again to finish it")
        raise PackError(f"{root} is not a genlab pack (no {META_FILE})")
    try:
        info = json.loads(meta_file.read_text())
    except json.JSONDecodeError as e:
        raise PackError(f"{meta_file} is damaged: {e}") from None
    if info.get("format") != FORMAT:
        raise PackError(f"{meta_file} is not a genlab pack (format {info.get('format')!r})")
    if int(info.get("version", 0)) > VERSION:
        raise PackError(f"{root} was packed by a newer genlab (pack format {info['version']}, this one reads "
                        f"{VERSION}); upgrade genlab")
    out: dict[str, Dataset] = {}
    for split, s in info["splits"].items():
        xp = root / s["x"]
        expect = tuple([s["n"], *info["shape"]])
        x = PackedArray(xp, info["kind"], s["stats"])
        if tuple(x.shape) != expect or str(x.storage) != info["storage"]:
            raise PackError(f"{xp} holds {tuple(x.shape)} {x.storage}, {META_FILE} says {expect} {info['storage']}: "
                            "the pack is damaged; pack the data again")
        y = None
        if s.get("y"):
            y = torch.from_numpy(np.load(root / s["y"]).astype(np.int64))
            if len(y) != s["n"]:
                raise PackError(f"{root / s['y']} holds {len(y)} labels for {s['n']} examples: pack again")
        ds: Dataset = PackedDataset(x, y, kind=info["kind"], name=info.get("name", str(root)),
                                    classes=info.get("classes"), columns=info.get("columns"),
                                    meta={**info.get("meta", {}), "split": split, "packed": str(root)})
        if binarize:
            if info["kind"] != "image":
                raise DataError(f"binarize applies to images, but {root} holds {info['kind']} data")
            ds = ds.binarize(0.5)
        decoded = len(ds) * math.prod(info["shape"]) * (8 if info["kind"] == "sequence" else 4)
        budget = _in_memory_limit() if in_memory_bytes is None else in_memory_bytes
        if limit is not None and limit < len(ds):
            ds = ds.subset(slice(0, limit))
        elif decoded < budget:
            ds = ds.subset(slice(0, len(ds)))
        out[split] = ds
    return out


# ----------------------------------------------------------------------------- writing
def storage_for(kind: str, x: torch.Tensor) -> np.dtype:
    """The smallest storage type that holds ``x`` exactly: ``uint8`` for images of 8-bit
    levels ``k / 255``, ``float16`` where that round-trips, ``int16``/``int32`` for token
    ids, else ``float32``."""
    if kind == "sequence":
        hi = int(x.max()) if x.numel() else 0
        return np.dtype(np.int16) if hi < 2**15 else np.dtype(np.int32)
    a = x.numpy()
    if kind == "image" and a.size and a.min() >= 0 and a.max() <= 1 \
            and np.array_equal((np.round(a * 255.0).astype(np.float32) / np.float32(255.0)), a):
        return np.dtype(np.uint8)
    if np.array_equal(a.astype(np.float16).astype(np.float32), a):
        return np.dtype(np.float16)
    return np.dtype(np.float32)


def common_storage(kind: str, dtypes: list[np.dtype]) -> np.dtype:
    """One storage type for every split (the widest they need)."""
    order = ([np.dtype(np.int16), np.dtype(np.int32)] if kind == "sequence" else
             [np.dtype(np.uint8), np.dtype(np.float16), np.dtype(np.float32)])
    return max(dtypes, key=order.index)


def _encode(x: torch.Tensor, storage: np.dtype) -> np.ndarray:
    a = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if storage == np.uint8:
        return np.round(a * 255.0).astype(np.uint8)
    return a.astype(storage)


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able part of a dataset's ``meta`` (tokenizer configs, statistics, names)."""
    out = {}
    for k, v in meta.items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            if isinstance(v, (np.ndarray, torch.Tensor)):
                out[k] = np.asarray(v).tolist()
            continue
        out[k] = v
    return out


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to write into a folder genlab did not make (or a finished pack unless
    ``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise PackError(f"{out} exists and is not a folder")
    if (out / META_FILE).is_file():
        if not overwrite:
            raise PackError(f"{out} already holds a finished pack; pass --overwrite to replace it")
        for name in os.listdir(out):
            if name == META_FILE or name == PROGRESS_FILE or name.endswith((".npy", ".npy.partial")):
                (out / name).unlink()
    elif out.is_dir() and any(out.iterdir()) and not (out / PROGRESS_FILE).is_file():
        raise PackError(f"{out} is a folder that is not empty and not a genlab pack: choose another -o")
    out.mkdir(parents=True, exist_ok=True)


def _write_meta(out: Path, info: dict[str, Any]) -> None:
    tmp = out / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, out / META_FILE)


def _save_progress(out: Path, state: dict[str, Any]) -> None:
    tmp = out / (PROGRESS_FILE + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, out / PROGRESS_FILE)


def pack_splits(splits: dict[str, Dataset], out: str | os.PathLike, *, source: str = "",
                overwrite: bool = False, progress: bool | None = None) -> Path:
    """Write in-memory splits as a pack (see the module docstring); returns the folder."""
    from ..progress import Progress

    out = Path(out)
    _prepare_out(out, overwrite)
    first = next(iter(splits.values()))
    kind = first.kind
    storage = common_storage(kind, [storage_for(kind, ds.x) for ds in splits.values()])
    info: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kind": kind, "name": first.name,
                            "source": source, "shape": list(first.shape), "storage": str(storage),
                            "classes": first.classes, "columns": first.columns,
                            "meta": _jsonable({k: v for k, v in first.meta.items() if k != "split"}), "splits": {}}
    total = sum(len(ds) for ds in splits.values())
    bar = Progress(total, f"pack {out.name}", "example", enabled=progress is not False)
    try:
        for split, ds in splits.items():
            x = _encode(ds.x, storage)
            np.save(out / f"{split}.x.npy", x)
            entry: dict[str, Any] = {"n": len(ds), "x": f"{split}.x.npy",
                                     "stats": {"min": float(ds.x.min()), "max": float(ds.x.max())}}
            if ds.y is not None:
                np.save(out / f"{split}.y.npy", ds.y.numpy().astype(np.int64))
                entry["y"] = f"{split}.y.npy"
            info["splits"][split] = entry
            bar.update(len(ds))
    finally:
        bar.close()
    _write_meta(out, info)
    return out


def _folder_plan(folder: Path, size: Any, channels: int | None) -> dict[str, Any]:
    """Scan a folder's image headers: files, labels, shape, storage and the split (the
    permutation ``load_splits`` uses for user data)."""
    from PIL import Image

    from .datasets import SPLIT_SEED, USER_FRACTIONS
    from .loaders import _GREY_BANDS, _size_arg

    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise DataError(f"image folder {folder} is empty")
    hw, grey, deep = None, True, False
    size = _size_arg(size)
    for f in files:  # headers only
        try:
            with Image.open(f) as img:
                s = (img.height, img.width)
                grey &= img.getbands() in _GREY_BANDS
                deep |= img.mode.startswith("I") or img.mode == "F"
        except Exception as err:  # noqa: BLE001 - Pillow raises many types
            raise DataError(f"cannot read image {f}: {type(err).__name__}: {err} (remove it, or move it out "
                            "of the folder, and pack again)") from err
        if size is None and hw is not None and s != hw:
            raise DataError(f"images in {folder} have different sizes ({hw[0]}x{hw[1]} and {s[0]}x{s[1]} at {f}); "
                            "pass --size N or --size H,W to resize them")
        hw = hw or s
    h, w = size or hw
    c = channels or (1 if grey else 3)
    rel = [f.relative_to(folder).parts for f in files]
    classes = sorted({p[0] for p in rel}) if all(len(p) >= 2 for p in rel) else None
    labels = [classes.index(p[0]) for p in rel] if classes else None
    n = len(files)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    plan, start = {}, 0
    for i, (split, frac) in enumerate(zip(SPLITS, USER_FRACTIONS)):
        stop = n if i == len(SPLITS) - 1 else start + int(round(frac * n))
        plan[split] = perm[start:stop]
        start = stop
    if min(len(v) for v in plan.values()) < 1:
        raise DataError(f"{folder}: {n} images are too few to split into train/val/test")
    return {"files": [str(f) for f in files], "labels": labels, "classes": classes, "shape": [c, h, w],
            "resize": list(size) if size else None, "storage": "float32" if deep else "uint8", "splits": plan}


def pack_image_folder(folder: str | os.PathLike, out: str | os.PathLike, *, size: Any = None,
                      channels: int | None = None, overwrite: bool = False, progress: bool | None = None,
                      chunk: int = CHUNK, _stop_after: int | None = None) -> Path:
    """Pack a folder of images of any size, streaming it in chunks of ``chunk`` images
    (bounded memory); resumable (see the module docstring). ``_stop_after`` (tests) raises
    ``KeyboardInterrupt`` after that many chunks, as a Ctrl-C would."""
    from ..progress import Progress
    from .loaders import _size_arg, _to_array

    from PIL import Image

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist or is not a folder")
    _prepare_out(out, overwrite)
    state_file = out / PROGRESS_FILE
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        want = {"source": str(folder.resolve()), "resize": list(_size_arg(size)) if size else None,
                "channels": channels}
        if {k: state.get(k) for k in want} != want:
            raise PackError(f"{out} holds an unfinished pack of another source or other options "
                            f"({ {k: state.get(k) for k in want} }); pass --overwrite to start again")
    else:
        plan = _folder_plan(folder, size, channels)
        state = {"source": str(folder.resolve()), "resize": plan["resize"], "channels": channels,
                 "plan": plan, "done": {s: 0 for s in SPLITS}}
        for split in SPLITS:  # allocate the arrays (sparse files: no disk written yet)
            np.lib.format.open_memmap(out / f"{split}.x.npy.partial", mode="w+", dtype=plan["storage"],
                                      shape=(len(plan["splits"][split]), *plan["shape"])).flush()
        _save_progress(out, state)
    plan = state["plan"]
    c, h, w = plan["shape"]
    storage = np.dtype(plan["storage"])
    total = sum(len(v) for v in plan["splits"].values())
    bar = Progress(total, f"pack {out.name}", "image", initial=sum(state["done"].values()),
                   enabled=progress is not False)
    chunks = 0
    try:
        for split in SPLITS:
            order = plan["splits"][split]
            mm = np.load(out / f"{split}.x.npy.partial", mmap_mode="r+")
            stats = state.setdefault("stats", {}).setdefault(split, {"min": math.inf, "max": -math.inf})
            while state["done"][split] < len(order):
                a = state["done"][split]
                b = min(a + chunk, len(order))
                rows = []
                for i in order[a:b]:
                    with Image.open(plan["files"][i]) as img:
                        img.load()
                        rows.append(_to_array(img, c, (h, w)))
                block = np.stack(rows)
                stats["min"], stats["max"] = min(stats["min"], float(block.min())), max(stats["max"], float(block.max()))
                mm[a:b] = np.round(block * 255.0).astype(np.uint8) if storage == np.uint8 else block.astype(storage)
                mm.flush()
                state["done"][split] = b
                _save_progress(out, state)  # after the rows are on disk: a kill loses at most this chunk
                bar.update(b - a)
                chunks += 1
                if _stop_after is not None and chunks >= _stop_after:
                    raise KeyboardInterrupt(f"stopped after {chunks} chunks")
            del mm
    finally:
        bar.close()
    info: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kind": "image", "name": str(folder),
                            "source": str(folder), "shape": plan["shape"], "storage": plan["storage"],
                            "classes": plan["classes"], "columns": None, "meta": {"source": str(folder)},
                            "splits": {}}
    labels = plan["labels"]
    for split in SPLITS:
        os.replace(out / f"{split}.x.npy.partial", out / f"{split}.x.npy")
        order = plan["splits"][split]
        entry = {"n": len(order), "x": f"{split}.x.npy", "stats": state["stats"][split]}
        if labels is not None:
            np.save(out / f"{split}.y.npy", np.asarray([labels[i] for i in order], dtype=np.int64))
            entry["y"] = f"{split}.y.npy"
        info["splits"][split] = entry
    _write_meta(out, info)
    state_file.unlink()
    return out


def pack(source: str | os.PathLike, out: str | os.PathLike, *, size: Any = None, channels: int | None = None,
         overwrite: bool = False, progress: bool | None = None, options: dict[str, Any] | None = None) -> Path:
    """Pack ``source`` into ``out`` (``NAME.gldata``): a folder of images is streamed (any
    size, resumable); anything else ``load_splits`` reads is loaded and written.

    Args:
        source: an image folder, a registered dataset name or a data file.
        out: the pack folder (created; an unfinished pack there is continued).
        size, channels: image folder options (resize to ``size``; 1 or 3 channels).
        overwrite: replace a finished pack at ``out``.
        progress: progress bar / log lines (``False``: none).
        options: loader options for non-folder sources (``limit``, ``binarize``, ...).
    """
    out = Path(out)
    if out.suffix != SUFFIX:
        raise PackError(f"-o {out}: a pack's name ends in {SUFFIX} (e.g. {out.with_suffix(SUFFIX).name})")
    src = Path(os.fspath(source))
    from .datasets import DATASETS

    if os.fspath(source) not in DATASETS and src.is_dir() and not is_packed(src):
        if options:
            raise PackError(f"options {sorted(options)} do not apply to an image folder (use --size/--channels)")
        return pack_image_folder(src, out, size=size, channels=channels, overwrite=overwrite, progress=progress)
    if size is not None or channels is not None:
        raise PackError("--size and --channels apply to image folders only")
    from .datasets import load_splits

    splits = load_splits(source, **(options or {}))
    return pack_splits(splits, out, source=os.fspath(source), overwrite=overwrite, progress=progress)


def describe(path: str | os.PathLike) -> str:
    """A few lines about a pack (what ``genlab data info`` prints)."""
    root = Path(path)
    info = json.loads((root / META_FILE).read_text()) if (root / META_FILE).is_file() else None
    if info is None:
        load_packed(root)  # raises the right error
    size = sum(f.stat().st_size for f in root.iterdir() if f.is_file())
    lines = [f"{root}: {info['kind']} data of shape {tuple(info['shape'])}, stored as {info['storage']}, "
             f"{size / 2**20:,.1f} MiB on disk (source: {info.get('source') or info.get('name')})"]
    for split, s in info["splits"].items():
        lab = ", labelled" if s.get("y") else ""
        lines.append(f"  {split}: {s['n']:,} examples{lab}, values {s['stats']['min']:g}..{s['stats']['max']:g}")
    return "\n".join(lines)


__all__: Sequence[str] = ("PackedArray", "PackedDataset", "PackError", "pack", "pack_splits", "pack_image_folder",
                          "load_packed", "is_packed", "describe", "SUFFIX")
