"""Loaders for user data: a folder of images, a ``.npy``/``.npz`` array, a CSV table.

Every loader returns one unsplit ``Dataset`` and turns bad input into a ``DataError`` that
names the offending file, array or column, so nothing fails deep inside torch.

Conventions shared with the rest of genlab:

* images are float32 ``(N, C, H, W)`` in ``[0, 1]`` with ``C`` in {1, 3};
* tables are stored standardised (zero mean, unit variance per column) with
  ``meta["mean"]`` and ``meta["std"]`` (lists); ``transforms.denormalize_table`` inverts it.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..errors import DataError
from .cleaning import MISSING_TOKENS, clean_table, parse_value, standardize_columns
from .dataset import Dataset

PROGRESS_THRESHOLD = 2000  # show a progress bar above this many files
_GREY_BANDS = {("1",), ("L",), ("L", "A"), ("I",), ("F",)}


# ----------------------------------------------------------------------------- sniffing
class FileKind(NamedTuple):
    """What ``sniff_file`` found: ``kind`` is ``"text"``, ``"network"`` (a Bayesian
    network file) or ``"binary"``; ``what`` says it in words (``"UAI"``, ``"BIF"``,
    ``"gzip-compressed data"``, ``"a PNG image"``...)."""

    kind: str
    what: str


SNIFF_BYTES = 65536
_MAGIC = (
    (b"\x93NUMPY", "a NumPy .npy array"), (b"PK\x03\x04", "a zip archive (or .npz array)"),
    (b"PK\x05\x06", "an empty zip archive"), (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"), (b"\x7fELF", "an executable"),
    (b"SQLite format 3\x00", "an SQLite database"), (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"BZh", "bzip2-compressed data"), (b"\xfd7zXZ\x00", "xz-compressed data"),
)
_BIF_START = re.compile(r"network\b[^{};,\n]*\{|variable\s+[^\s{};,]+\s*\{"
                        r"|probability\s*\([^(){};]*\)\s*\{")


def _strip_comments(s: str) -> str:
    """Leading whitespace and ``//`` / ``/* */`` comments removed (BIF allows both)."""
    while True:
        s = s.lstrip()
        if s.startswith("//"):
            s = s.partition("\n")[2]
        elif s.startswith("/*"):
            s = s.partition("*/")[2]
        else:
            return s


def _looks_uai(toks: list[str]) -> bool:
    """``BAYES``/``MARKOV`` then counts consistent with a UAI preamble (as far as seen)."""
    if len(toks) < 2 or toks[0] not in ("BAYES", "MARKOV"):
        return False
    ints = []
    for t in toks[1:]:
        if not t.isascii() or not t.isdigit():
            break
        ints.append(int(t))
    if not ints or ints[0] < 1:
        return False
    n, rest = ints[0], ints[1:]
    if any(c < 1 for c in rest[:n]):
        return False
    if len(rest) <= n:  # the file (or what we read of it) ends inside the cardinalities
        return len(ints) == len(toks) - 1
    nf, rest = rest[n], rest[n + 1:]
    for _ in range(nf):  # scopes: a size >= 1, then that many variable indices below n
        if not rest:
            break
        k, idx, rest = rest[0], rest[1:1 + rest[0]], rest[1 + rest[0]:]
        if k < 1 or any(j >= n for j in idx):
            return False
    return True


def _sniff_text(head: bytes) -> str | None:
    """``"BIF"`` / ``"UAI"`` if text starts like a network file, else None."""
    s = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if _BIF_START.match(_strip_comments(s)):
        return "BIF"
    if _looks_uai(s.split(None, 2000)[:2000]):
        return "UAI"
    return None


def sniff_file(path: str | Path) -> FileKind:
    """What a file holds, by its name and first bytes (it is not parsed).

    Bayesian network files (``.bif``, ``.bif.gz``, ``.uai``, or text that starts like a BIF
    ``network``/``variable``/``probability`` block or a UAI ``BAYES``/``MARKOV``
    preamble) are ``"network"``; known binary formats (gzip, zip/npz, npy, images, PDF...)
    and anything with NUL bytes are ``"binary"``; the rest is ``"text"``.

    Raises:
        DataError: the file cannot be read.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from err
    if name.endswith((".bif", ".bif.gz")):
        return FileKind("network", "BIF")
    if name.endswith((".uai", ".uai.gz")):
        return FileKind("network", "UAI")
    if head.startswith(b"\x1f\x8b"):
        try:
            inner = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            inner = b""
        net = _sniff_text(inner) if inner else None
        return FileKind("network", f"{net}, gzip-compressed") if net \
            else FileKind("binary", "gzip-compressed data")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return FileKind("binary", what)
    net = _sniff_text(head)
    if net:
        return FileKind("network", net)
    if b"\x00" in head:
        return FileKind("binary", "binary data (it holds NUL bytes)")
    return FileKind("text", "text")


def network_file_error(path: str | Path, what: str) -> DataError:
    """The DataError for a Bayesian network file given where data is expected."""
    reader = "read_uai" if what.startswith("UAI") else "read_bif"
    return DataError(f"{path} is a Bayesian network file ({what}), not a data table; load it "
                     f"with genlab.models.pgm.{reader}() (to learn a network, pass a CSV of "
                     "observations)")


def require_text_file(path: str | Path, what: str = "a CSV table") -> None:
    """Raise a DataError naming ``path`` unless it is a text file (not a network file,
    not compressed or binary); ``what`` is what the caller expected, for the message."""
    kind = sniff_file(path)
    if kind.kind == "network":
        raise network_file_error(path, kind.what)
    if kind.kind == "binary":
        raise DataError(f"{path} is not {what}: it looks like {kind.what}"
                        + ("; decompress it first" if "compressed" in kind.what else ""))


# ----------------------------------------------------------------------------- images
def _size_arg(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DataError(f"size must be an int or (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise DataError(f"size must be positive, got {size!r}")
    return h, w


def _to_array(img: Any, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """A Pillow image -> float32 ``(C, H, W)`` in [0, 1]."""
    from PIL import Image

    resample = Image.Resampling.LANCZOS
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit greyscale
        scale = 65535.0 if img.mode.startswith("I") else 1.0
        grey = Image.fromarray(np.asarray(img, dtype=np.float32) / scale, mode="F")
        if size is not None:
            grey = grey.resize((size[1], size[0]), resample)
        a = np.clip(np.asarray(grey, dtype=np.float32), 0.0, 1.0)[None]
        return np.repeat(a, 3, axis=0) if channels == 3 else a
    img = img.convert("L" if channels == 1 else "RGB")
    if size is not None:
        img = img.resize((size[1], size[0]), resample)
    a = np.asarray(img, dtype=np.float32) / 255.0
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _bad_file(path: Path, err: BaseException, on_error: str, skipped: list[str]) -> None:
    msg = f"cannot read image {path}: {type(err).__name__}: {err}"
    if on_error == "raise":
        raise DataError(msg + " (pass on_error='skip' to skip unreadable files)") from err
    warnings.warn(f"skipping {path}: {type(err).__name__}: {err}", stacklevel=3)
    skipped.append(str(path))


def load_image_folder(
    path: str | Path,
    *,
    size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    on_error: str = "raise",
) -> Dataset:
    """Load every image under a folder (recursively) as one Dataset.

    Files and folders whose names start with ``.`` are ignored. When every image sits in a
    subfolder, the first-level subfolder names are the classes (sorted) and become labels.

    Args:
        path: the folder.
        size: output size, an int (square) or ``(height, width)``; images are resized with
            Pillow's LANCZOS filter. Default: the size all images share.
        channels: 1 (greyscale) or 3 (RGB). Default: 1 if every image is greyscale,
            else 3. Alpha channels are dropped.
        on_error: ``"raise"`` (a DataError naming the file) or ``"skip"`` (a warning
            naming each skipped file) for non-image, unreadable or truncated files.

    Returns:
        A Dataset of kind ``"image"`` with values in [0, 1].

    Raises:
        DataError: a missing or empty folder, no readable images, mixed sizes without
            ``size=``, a bad file with ``on_error="raise"``, or a bad argument.
    """
    from PIL import Image

    root = Path(path)
    if on_error not in ("raise", "skip"):
        raise DataError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    size = _size_arg(size)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise DataError(f"image folder {root} is empty")

    from tqdm.auto import tqdm

    # pass 1: headers only (cheap) -> sizes and colour modes
    skipped: list[str] = []
    headers: list[tuple[Path, tuple[int, int], bool]] = []
    for f in tqdm(files, desc="scanning images", disable=len(files) <= PROGRESS_THRESHOLD):
        try:
            with Image.open(f) as img:
                headers.append((f, (img.height, img.width), img.getbands() in _GREY_BANDS))
        except Exception as err:  # Pillow raises many types for corrupt files
            _bad_file(f, err, on_error, skipped)
    if not headers:
        raise DataError(f"no readable images in {root} ({len(files)} file(s) skipped)")
    if size is None:
        first = headers[0]
        for h in headers[1:]:
            if h[1] != first[1]:
                raise DataError(
                    f"images in {root} have different sizes: {first[0]} is "
                    f"{first[1][0]}x{first[1][1]} but {h[0]} is {h[1][0]}x{h[1][1]} "
                    "(height x width); pass size=(height, width) or size=N to resize them"
                )
    if channels is None:
        channels = 1 if all(grey for _, _, grey in headers) else 3

    # pass 2: decode and convert (truncated files fail here)
    arrays, kept = [], []
    for f, _, _ in tqdm(headers, desc="loading images",
                        disable=len(headers) <= PROGRESS_THRESHOLD):
        try:
            with Image.open(f) as img:
                img.load()
                arrays.append(_to_array(img, channels, size))
            kept.append(f)
        except Exception as err:  # Pillow raises many types for corrupt files
            _bad_file(f, err, on_error, skipped)
    if not arrays:
        raise DataError(f"no readable images in {root} ({len(skipped)} file(s) skipped)")

    rel = [f.relative_to(root).parts for f in kept]
    y = classes = None
    if all(len(parts) >= 2 for parts in rel):
        classes = sorted({parts[0] for parts in rel})
        index = {c: i for i, c in enumerate(classes)}
        y = torch.tensor([index[parts[0]] for parts in rel], dtype=torch.int64)
    x = torch.from_numpy(np.stack(arrays))
    meta = {"source": str(root), "skipped": skipped}
    return Dataset(x, y, kind="image", name=str(root), classes=classes, meta=meta)


# ----------------------------------------------------------------------------- arrays
def _first_bad(a: np.ndarray) -> list[int]:
    bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return np.flatnonzero(bad)[:5].tolist()


def _image_layout(a: np.ndarray, name: str) -> np.ndarray:
    """Put images in ``(N, C, H, W)`` (see ``load_array`` for the rule)."""
    if a.ndim == 3:
        return a[:, None]
    first, last = a.shape[1] in (1, 3), a.shape[3] in (1, 3, 4)
    if first:  # channel-first wins when both axes could be channels (torch convention)
        return a
    if last:
        a = a.transpose(0, 3, 1, 2)
        if a.shape[1] == 4:
            warnings.warn(f"{name}: dropping the alpha channel of RGBA images", stacklevel=3)
            a = a[:, :3]
        return a
    raise DataError(
        f"{name}: cannot find the channel axis of an array of shape {a.shape}: expected "
        "(N, C, H, W) with C in {1, 3} or (N, H, W, C) with C in {1, 3, 4}"
    )


def _scale_images(a: np.ndarray, name: str) -> np.ndarray:
    """uint8 -> /255; ints in [0, 255] -> /255; floats in [0, 1] kept; else min-max."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    lo, hi = float(a.min()), float(a.max())
    if a.dtype.kind in "iu" and lo >= 0 and hi <= 255:
        return a.astype(np.float32) / 255.0
    if a.dtype.kind == "b" or (lo >= 0.0 and hi <= 1.0):
        return a.astype(np.float32)
    warnings.warn(
        f"{name}: image values span [{lo:.4g}, {hi:.4g}], not [0, 1]; rescaling min-max to "
        "[0, 1] (scale them yourself to control this)", stacklevel=3,
    )
    a = a.astype(np.float64)
    if not np.isfinite(hi - lo):  # values near +-1e308: halve first so nothing overflows
        a, lo, hi = a * 0.5, lo * 0.5, hi * 0.5
    span = hi - lo if hi > lo else 1.0
    return ((a - lo) / span).astype(np.float32)


def _labels(y: np.ndarray, n: int, name: str) -> torch.Tensor:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf" or y.reshape(-1).shape[0] != n:
        raise DataError(f"{name}: labels must be {n} integers, got {y.dtype} array {y.shape}")
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise DataError(f"{name}: labels must be whole numbers")
    if len(y) and y.min() < 0:
        raise DataError(f"{name}: labels must be >= 0, found {int(y.min())}")
    return torch.from_numpy(y.astype(np.int64))


def _check_array_file(path: Path) -> None:
    """A DataError naming ``path`` unless it starts like a .npy or .npz file; for .npy also
    check the header (no object dtype, data as long as the shape says) before numpy reads
    it, so a corrupt header cannot make numpy allocate terabytes or unpickle anything."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
            if magic.startswith(b"PK"):
                return  # .npz: members are checked while loading
            if magic != b"\x93NUMPY":
                kind = sniff_file(path)
                if kind.kind == "network":
                    raise network_file_error(path, kind.what)
                what = "pickled Python objects" if magic[:1] == b"\x80" else kind.what
                raise DataError(f"{path} is not a NumPy .npy/.npz file: it looks like {what}")
            from numpy.lib import format as npformat

            f.seek(0)
            version = npformat.read_magic(f)
            read = npformat.read_array_header_1_0 if version == (1, 0) \
                else npformat.read_array_header_2_0
            shape, _, dtype = read(f)
            start = f.tell()
    except DataError:
        raise
    except Exception as err:  # a corrupt header: numpy raises ValueError and friends
        raise DataError(f"cannot read array file {path}: bad .npy header "
                        f"({type(err).__name__}: {err})") from err
    if dtype.hasobject:
        raise DataError(f"{path} holds Python objects (dtype {dtype}); loading them needs "
                        "pickle, which genlab refuses for safety: save a numeric array")
    need = start + int(np.prod(shape, dtype=object)) * dtype.itemsize
    size = path.stat().st_size
    if size < need:
        raise DataError(f"array file {path} is truncated: its header promises a {dtype} array "
                        f"of shape {tuple(shape)} ({need} bytes) but the file has {size}")


def _table_dataset(x: np.ndarray, *, name: str, y: torch.Tensor | None = None,
                   columns: list[str] | None = None, classes: list[str] | None = None,
                   meta: dict[str, Any] | None = None) -> Dataset:
    """A standardised table Dataset (as ``transforms.table_dataset``) whose statistics
    cannot overflow: finite values near 1e308 load as well as small ones."""
    z, mean, std = standardize_columns(x)
    meta = dict(meta or {}, mean=mean.tolist(), std=std.tolist())
    columns = columns or [f"col{i}" for i in range(x.shape[1])]
    return Dataset(torch.from_numpy(z.astype(np.float32)), y, kind="table", name=name,
                   classes=classes, columns=columns, meta=meta)


def load_array(path: str | Path, *, key: str | None = None) -> Dataset:
    """Load a ``.npy`` or ``.npz`` array as images or a table.

    Shape rule: ``(N, D)`` is a table; ``(N, H, W)`` is 1-channel images; ``(N, A, B, C)``
    is channel-first if ``A`` is 1 or 3, else channel-last if ``C`` is 1, 3 or 4 (RGBA
    loses its alpha); other shapes are errors. Image values: uint8 and integers within
    [0, 255] are divided by 255, floats within [0, 1] are kept, anything else is min-max
    scaled to [0, 1] with a warning. Tables are standardised (see ``load_table``).

    For ``.npz`` the data array is ``key`` if given, else the first of ``x``, ``X``,
    ``images``, ``data``, else the only array; labels come from ``y``, ``Y`` or
    ``labels`` if present.

    Args:
        path: the ``.npy`` / ``.npz`` file.
        key: the array to use inside an ``.npz``.

    Returns:
        A Dataset of kind ``"image"`` or ``"table"``.

    Raises:
        DataError: unreadable file, object (pickled) arrays, non-numeric dtype, NaN/inf
            values (with count and first indices), unsupported shape, bad labels.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise DataError(f"array file {path} does not exist")
    _check_array_file(path)
    y = None
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            if key is not None:
                raise DataError(f"{name}: key= only applies to .npz files")
            x = loaded
        else:
            with loaded:
                keys = list(loaded.files)
                if key is None:
                    key = next((k for k in ("x", "X", "images", "data") if k in keys),
                               keys[0] if len(keys) == 1 else None)
                if key not in keys:
                    what = "choose the data array with key=" if key is None \
                        else f"no array {key!r}"
                    raise DataError(f"{name}: {what}; the file holds {keys}")
                x = loaded[key]
                ykey = next((k for k in ("y", "Y", "labels") if k in keys and k != key), None)
                y = loaded[ykey] if ykey else None
                name = f"{name}[{key}]"
    except DataError:
        raise
    except Exception as err:  # numpy/zipfile raise many types for corrupt files
        hint = " (object arrays need pickle, which genlab refuses for safety)" \
            if "pickle" in str(err) else ""
        raise DataError(f"cannot read array file {path}: {type(err).__name__}: {err}{hint}") \
            from err
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name}: expected a numeric array, got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4) or 0 in x.shape:
        raise DataError(
            f"{name}: unsupported shape {x.shape}; expected (N, D) table, (N, H, W) or "
            "(N, C, H, W) / (N, H, W, C) images with no empty axis"
        )
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise DataError(f"{name}: {bad} NaN/inf value(s), first in examples {_first_bad(x)}")
    labels = _labels(y, len(x), name) if y is not None else None
    if x.ndim == 2:
        return _table_dataset(x.astype(np.float64), name=name, y=labels,
                              meta={"source": str(path)})
    x = _scale_images(_image_layout(x, name), name)
    return Dataset(torch.from_numpy(np.ascontiguousarray(x)), labels, kind="image",
                   name=name, meta={"source": str(path)})


# ----------------------------------------------------------------------------- tables
def read_csv_text(path: Path) -> str:
    """The text of a CSV file (UTF-8, a BOM dropped), or a ``DataError`` naming the file
    and, for a byte that is not UTF-8, its offset and line."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raw = path.read_bytes()
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"CSV file {path} is not UTF-8 text: byte 0x{raw[err.start]:02x} at "
                        f"offset {err.start} (line {line}); convert it to UTF-8") from err
    except OSError as err:
        raise DataError(f"cannot read CSV file {path}: {err}") from err


def read_csv_rows(path: Path, delimiter: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV (blank lines skipped; the delimiter is guessed from the
    header line). Every problem is a ``DataError`` naming the file (and line)."""
    text = read_csv_text(path)
    if not text.strip():
        raise DataError(f"CSV file {path} is empty")
    if delimiter is None:
        first = text.lstrip().splitlines()[0]
        delimiter = next((d for d in ",;\t|" if d in first), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    body = []
    try:
        for r in reader:
            if not r:
                continue
            if header is None:
                header = [h.strip() for h in r]
                if len(set(header)) != len(header) or "" in header:
                    raise DataError(f"CSV file {path}: column names must be unique and "
                                    f"non-empty: {header}")
            elif len(r) != len(header):
                raise DataError(f"CSV file {path}, line {reader.line_num}: {len(r)} fields, "
                                f"expected {len(header)} like the header")
            else:
                body.append(r)
    except csv.Error as err:
        raise DataError(f"CSV file {path}, line {reader.line_num}: {err}") from err
    if not body:
        raise DataError(f"CSV file {path} has a header but no rows")
    return header, body


MAX_INTEGER_LABEL = 65535  # integer labels up to this are kept as class indices


def load_table(
    path: str | Path,
    *,
    label: str | None = None,
    clean: str | dict[str, Any] | None = None,
    drop_text: bool = False,
    delimiter: str | None = None,
) -> Dataset:
    """Load a CSV table (first row = column names) as a standardised table Dataset.

    Uses only the stdlib ``csv`` module and numpy. Cells are parsed by ``clean_table``
    (``" 3.5 "``, ``"1,234"``, ``yes/no``, ``NA``...).

    Args:
        path: the CSV file (delimiter sniffed among ``, ; tab |`` unless given).
        label: a column to use as labels ``y``: non-negative integers up to
            ``MAX_INTEGER_LABEL`` are kept, anything else is mapped to ``0..K-1`` over the
            sorted distinct values (``classes``; larger integer ids in numeric order).
        clean: ``None`` (missing values are an error), a missing-value strategy
            (``"drop"``, ``"mean"``, ``"median"``, ``"mode"``) or a dict of
            ``clean_table`` keyword arguments, e.g. ``{"missing": "median",
            "outliers": "quantile"}``.
        drop_text: drop non-numeric feature columns instead of raising.
        delimiter: the field separator.

    Returns:
        A Dataset of kind ``"table"``; ``meta`` holds ``mean``, ``std`` and ``cleaning``
        (the ``CleaningReport`` as a dict).

    Raises:
        DataError: unreadable/ragged file, a file that is not a CSV text table (a
            Bayesian network file, compressed or binary data), unknown label column,
            non-numeric columns, missing values without ``clean``, no feature columns
            left. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist")
    require_text_file(path, "a CSV table")
    opts: dict[str, Any] = {"missing": "error"}
    if isinstance(clean, str):
        opts["missing"] = clean
    elif isinstance(clean, dict):
        opts.update(clean)
    elif clean is not None:
        raise DataError(f"clean must be None, a string or a dict, got {clean!r}")
    header, body = read_csv_rows(path, delimiter)
    cols = {h: np.array([r[i] for r in body], dtype=object) for i, h in enumerate(header)}

    y = classes = None
    if label is not None:
        if label not in cols:
            raise DataError(f"{path}: no label column {label!r}; columns are {header}")
        raw = cols.pop(label)
        lab = [str(v).strip() for v in raw]
        gaps = np.array([v.lower() in MISSING_TOKENS for v in lab], dtype=bool)
        if gaps.any():
            if opts["missing"] != "drop":
                raise DataError(f"{path}: label column {label!r} has {int(gaps.sum())} missing "
                                f"value(s) (first rows: {np.flatnonzero(gaps)[:5].tolist()}); "
                                "use clean='drop' to drop those rows")
            cols = {k: v[~gaps] for k, v in cols.items()}
            lab = [v for v, g in zip(lab, gaps) if not g]
        digits = all(v.isascii() and v.isdigit() for v in lab)
        if digits and max(int(v) for v in lab) <= MAX_INTEGER_LABEL:
            y_np = np.array([int(v) for v in lab], dtype=np.int64)
            classes = [str(i) for i in range(int(y_np.max()) + 1)]
        elif digits:  # large ids: classes are the distinct values, in numeric order
            classes = [str(v) for v in sorted({int(v) for v in lab})]
            index = {c: i for i, c in enumerate(classes)}
            y_np = np.array([index[str(int(v))] for v in lab], dtype=np.int64)
        else:
            classes = sorted(set(lab))
            index = {c: i for i, c in enumerate(classes)}
            y_np = np.array([index[v] for v in lab], dtype=np.int64)
        y = y_np
    if not cols:
        raise DataError(f"{path}: no feature columns (only the label {label!r})")

    kinds = {h: [parse_value(v)[0] for v in col] for h, col in cols.items()}
    text_cols = [h for h in cols if "text" in kinds[h]]
    if text_cols and not drop_text:
        h = text_cols[0]
        example = cols[h][kinds[h].index("text")]
        raise DataError(f"{path}: column {h!r} is not numeric (e.g. {example!r}); "
                        "pass drop_text=True to drop such columns, or use it as label=")
    features = [h for h in cols if h not in text_cols]
    if not features:
        raise DataError(f"{path}: no numeric columns left after dropping {text_cols}")
    if y is not None and opts["missing"] == "drop":  # keep labels aligned with kept rows
        keep = np.ones(len(y), dtype=bool)
        for h in features:
            keep &= np.array([k != "missing" for k in kinds[h]])
        y = y[keep]
    try:
        cleaned, report = clean_table({h: cols[h] for h in features}, **opts)
    except TypeError as err:
        raise DataError(f"bad clean= options {clean!r}: {err}") from err
    except DataError as err:
        raise DataError(f"{path}: {err}") from err
    x = np.stack([np.asarray(cleaned[f], dtype=np.float64) for f in features], axis=1)
    meta = {"source": str(path), "cleaning": report.to_dict(),
            "dropped_columns": text_cols, "label": label}
    return _table_dataset(x, name=str(path), y=None if y is None else torch.from_numpy(y),
                         columns=features, classes=classes, meta=meta)

