"""Tokenisers for the sequence family: characters, byte-pair encoding (BPE), whitespace
words (music events) and molecule strings (atom-level SMILES, SELFIES symbols).

Both are saved *inside the model config* as plain JSON (the vocabulary as a list of
strings, BPE merges as pairs of token ids), so a saved model needs no pickle and no
side file. The first ``len(SPECIALS)`` ids are always the special tokens
``<pad>`` (0), ``<bos>`` (1) and ``<eos>`` (2); every other vocabulary entry is the
literal text it stands for, so decoding is ``"".join(vocab[i] for i in ids)``.

BPE (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword
Units") is trained with Hugging Face ``tokenizers`` (pip install "genlab[text]") on the
user's corpus. Pre-tokenisation splits text into words with their leading space
(``" ?[^\\s]+|\\s"``), so merges never cross word boundaries and every token is a literal
substring: the round trip ``decode(encode(text)) == text`` is exact for any text whose
characters are in the alphabet.

Molecule tokenisers (``"smiles"``, ``"selfies"``) split with ``genlab.chem.tokens``: one
token per atom, bond, branch or ring closure (``Cl``, ``[nH]``, ``%12``) or per SELFIES
symbol (``[=C]``, ``[Ring1]``), so a model never has to learn that ``C`` followed by
``l`` is chlorine; decoding concatenates tokens, as for characters.

Captions (``"caption"``, the text of text-to-image data) are lowercased words and single
punctuation marks over a fixed vocabulary that has a fourth special, ``<unk>`` (id 3):
a word outside it encodes as ``<unk>`` instead of failing, since users type free text.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, Iterable, Sequence

import torch

from ..chem.tokens import tokenize_selfies, tokenize_smiles

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
UNK, UNK_ID = "<unk>", 3  # captions only: the id of any word outside the vocabulary
_PRETOKENIZE = r" ?[^\s]+|\s"


class CharTokenizer:
    """One token per character (plus the three specials).

    Args:
        vocab: the full vocabulary, specials first (as stored in the model config).
    """

    kind = "char"

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if tuple(vocab[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with the specials {SPECIALS}")
        self.vocab = vocab
        self.index = {t: i for i, t in enumerate(vocab)}

    @classmethod
    def train(cls, texts: Iterable[str]) -> "CharTokenizer":
        """The sorted set of characters in ``texts``."""
        chars: set[str] = set()
        for t in texts:
            chars.update(t)
        return cls([*SPECIALS, *sorted(chars)])

    def __len__(self) -> int:
        return len(self.vocab)

    def _unknown(self, text: str, i: int) -> ValueError:
        return ValueError(f"character {text[i]!r} (U+{ord(text[i]):04X}) at position {i} is not in "
                          f"the tokenizer's vocabulary of {len(self.vocab)} tokens; the model "
                          "never saw it in training")

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; a character never seen in training raises ValueError."""
        try:
            return [self.index[c] for c in text]
        except KeyError:
            i = next(i for i, c in enumerate(text) if c not in self.index)
            raise self._unknown(text, i) from None

    def decode(self, ids: Iterable[int], *, keep_specials: bool = False) -> str:
        """Text of ``ids``; special tokens are dropped unless ``keep_specials``."""
        out = []
        for i in ids:
            i = int(i)
            if i < len(SPECIALS) and not keep_specials:
                continue
            out.append(self.vocab[i])
        return "".join(out)

    def to_config(self) -> dict:
        return {"tokenizer": self.kind, "vocab": tuple(self.vocab), "merges": ()}


class BPETokenizer(CharTokenizer):
    """Byte-pair encoding over characters, learned with Hugging Face ``tokenizers``.

    Args:
        vocab: specials, then the alphabet, then one token per merge (config order).
        merges: ``(left_id, right_id)`` pairs in the order they were learned; merge ``k``
            creates token ``vocab[len(SPECIALS) + len(alphabet) + k]``.
    """

    kind = "bpe"

    def __init__(self, vocab: Sequence[str], merges: Sequence[Sequence[int]]):
        super().__init__(vocab)
        self.merges = [(int(a), int(b)) for a, b in merges]
        for k, (a, b) in enumerate(self.merges):
            if not (0 <= a < len(self.vocab) and 0 <= b < len(self.vocab)):
                raise ValueError(f"BPE merge {k} refers to a token id outside the vocabulary")
        self._hf = None

    @staticmethod
    def _lib():
        try:
            import tokenizers
        except ImportError as err:
            raise ImportError('BPE tokenisation needs Hugging Face tokenizers: '
                              'pip install "genlab[text]" (or pip install "tokenizers>=0.15")') from err
        return tokenizers

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 512, *,  # type: ignore[override]
              min_frequency: int = 2, alphabet: Iterable[str] = ()) -> "BPETokenizer":
        """Learn merges on ``texts`` until the vocabulary has ``vocab_size`` tokens.

        Args:
            texts: training text (e.g. the training split of a corpus).
            vocab_size: final size including specials and the alphabet.
            min_frequency: a pair must occur at least this often to be merged.
            alphabet: extra characters to include (e.g. those only in held-out text).
        """
        tk = cls._lib()
        texts = list(texts)
        alphabet = sorted(set(alphabet).union(*map(set, texts)))
        if vocab_size < len(SPECIALS) + len(alphabet):
            raise ValueError(f"vocab_size={vocab_size} is smaller than the specials plus the "
                             f"{len(alphabet)}-character alphabet")
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.Split(tk.Regex(_PRETOKENIZE), behavior="isolated")
        trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIALS),
                                         min_frequency=min_frequency, initial_alphabet=alphabet,
                                         special_tokens=[], limit_alphabet=len(alphabet) + 1,
                                         show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        model = __import__("json").loads(tok.to_str())["model"]
        hf_vocab: dict[str, int] = model["vocab"]
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        # our order: specials, alphabet (sorted), then merge products in merge order
        vocab = [*SPECIALS, *alphabet]
        index = {t: i for i, t in enumerate(vocab)}
        extra = sorted((t for t in hf_vocab if t not in index and len(t) == 1), key=hf_vocab.get)
        for t in extra:
            index[t] = len(vocab)
            vocab.append(t)
        pairs = []
        for a, b in merges:
            pairs.append((index[a], index[b]))
            if a + b not in index:
                index[a + b] = len(vocab)
                vocab.append(a + b)
        return cls(vocab, pairs)

    def _tokenizer(self):
        if self._hf is None:
            tk = self._lib()
            hf_vocab = {t: i for i, t in enumerate(self.vocab)}
            merges = [(self.vocab[a], self.vocab[b]) for a, b in self.merges]
            tok = tk.Tokenizer(tk.models.BPE(vocab=hf_vocab, merges=merges))
            tok.pre_tokenizer = tk.pre_tokenizers.Split(tk.Regex(_PRETOKENIZE), behavior="isolated")
            self._hf = tok
        return self._hf

    def encode(self, text: str) -> list[int]:
        for i, c in enumerate(text):
            if c not in self.index:
                raise self._unknown(text, i)
        return list(self._tokenizer().encode(text).ids)

    def to_config(self) -> dict:
        return {"tokenizer": self.kind, "vocab": tuple(self.vocab),
                "merges": tuple(tuple(m) for m in self.merges)}


class WordTokenizer(CharTokenizer):
    """Whitespace-separated symbols (e.g. music events ``p60 d4 rest d2``): one token each."""

    kind = "word"

    def encode(self, text: str) -> list[int]:
        out = []
        for w in text.split():
            if w not in self.index:
                raise ValueError(f"symbol {w!r} is not in the tokenizer's vocabulary of {len(self.vocab)} tokens")
            out.append(self.index[w])
        return out

    def decode(self, ids: Iterable[int], *, keep_specials: bool = False) -> str:
        return " ".join(self.vocab[int(i)] for i in ids if keep_specials or int(i) >= len(SPECIALS))


class SmilesTokenizer(CharTokenizer):
    """Atom-level SMILES tokens (``genlab.chem.tokenize_smiles``), specials first.

    Args:
        vocab: the full vocabulary, specials first (as stored in the model config).
    """

    kind = "smiles"
    split: Callable[[str], list[str]] = staticmethod(tokenize_smiles)

    @classmethod
    def train(cls, texts: Iterable[str], *, alphabet: Iterable[str] = ()) -> "SmilesTokenizer":
        """The sorted set of tokens in ``texts`` plus the tokens in ``alphabet``.

        Args:
            texts: molecule strings (e.g. every split of a data set, so held-out molecules
                can be scored).
            alphabet: extra tokens to include.
        Raises:
            ValueError: a string that does not tokenise (naming the position).
        """
        tokens: set[str] = set(alphabet)
        for t in texts:
            tokens.update(cls.split(t))
        return cls([*SPECIALS, *sorted(tokens)])

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; a token never seen in training raises ValueError naming it."""
        tokens = self.split(text)
        try:
            return list(map(self.index.__getitem__, tokens))
        except KeyError:
            k = next(k for k, t in enumerate(tokens) if t not in self.index)
            pos = sum(map(len, tokens[:k]))
            name = "SMILES" if self.kind == "smiles" else "SELFIES"
            raise ValueError(f"{name} token {tokens[k]!r} at position {pos} of {text!r} is not in the "
                             f"tokenizer's vocabulary of {len(self.vocab)} tokens; the model never "
                             "saw it in training") from None


class SelfiesTokenizer(SmilesTokenizer):
    """SELFIES symbols (``genlab.chem.tokenize_selfies``), specials first."""

    kind = "selfies"
    split = staticmethod(tokenize_selfies)


class CaptionTokenizer(CharTokenizer):
    """Caption words: lowercased, split into words (letters and digits) and single
    punctuation marks (``"top-left: red circle"`` is ``top - left : red circle``).

    The vocabulary is the specials, ``<unk>`` (id 3), then the words; any word outside it
    encodes as ``<unk>``, never an error. ``decode`` joins words with spaces but puts no
    space before ``,`` ``:`` ``;`` ``.`` ``!`` ``?`` and none around ``-``, so a lowercase
    caption written that way comes back exactly.

    Args:
        vocab: the full vocabulary, specials and ``<unk>`` first (as stored in configs).
    """

    kind = "caption"
    _WORDS = re.compile(r"\w+|[^\w\s]")
    _NO_SPACE_BEFORE = frozenset(",:;.!?-")

    def __init__(self, vocab: Sequence[str]):
        super().__init__(vocab)
        if len(self.vocab) <= UNK_ID or self.vocab[UNK_ID] != UNK:
            raise ValueError(f"a caption vocabulary must have {UNK!r} at id {UNK_ID}, after the specials")

    @classmethod
    def split(cls, text: str) -> list[str]:
        """The words and punctuation marks of ``text``, lowercased."""
        return cls._WORDS.findall(text.lower())

    @classmethod
    def train(cls, texts: Iterable[str], *, alphabet: Iterable[str] = ()) -> "CaptionTokenizer":
        """The sorted set of words in ``texts`` plus the words in ``alphabet``."""
        words = {w for a in alphabet for w in cls.split(a)}
        for t in texts:
            words.update(cls.split(t))
        return cls([*SPECIALS, UNK, *sorted(words - {*SPECIALS, UNK})])

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; an unknown word is ``UNK_ID``."""
        return [self.index.get(w, UNK_ID) for w in self.split(text)]

    def decode(self, ids: Iterable[int], *, keep_specials: bool = False) -> str:
        """The words of ``ids`` joined by spaces (none before punctuation or around
        ``-``); pad/bos/eos are dropped unless ``keep_specials``, ``<unk>`` is kept."""
        out, prev = "", ""
        for i in map(int, ids):
            if i < len(SPECIALS) and not keep_specials:
                continue
            w = self.vocab[i]
            out += w if not out or w in self._NO_SPACE_BEFORE or prev == "-" else " " + w
            prev = w
        return out


def encode_captions(tokenizer: CharTokenizer, captions: Sequence[str], length: int | None = None
                    ) -> torch.Tensor:
    """Token rows of ``captions``: ``(N, length)`` int64, padded with ``PAD_ID`` (0) and
    cut at ``length`` (None: the longest caption, at least 1)."""
    rows = [tokenizer.encode(c) for c in captions]
    if length is None:
        length = max(1, *map(len, rows)) if rows else 1
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    out = torch.full((len(rows), length), PAD_ID, dtype=torch.int64)
    for k, r in enumerate(rows):
        r = r[:length]
        out[k, :len(r)] = torch.tensor(r, dtype=torch.int64)
    return out


CLASSES = {"char": CharTokenizer, "bpe": BPETokenizer, "word": WordTokenizer,
           "smiles": SmilesTokenizer, "selfies": SelfiesTokenizer,
           "caption": CaptionTokenizer}  # kind -> class

def from_config(kind: str, vocab: Sequence[str], merges: Sequence[Sequence[int]] = ()) -> CharTokenizer:
    """The tokenizer a model config describes."""
    if kind not in CLASSES:
        raise ValueError(f"unknown tokenizer {kind!r}; choose one of {', '.join(CLASSES)}")
    return BPETokenizer(vocab, merges) if kind == "bpe" else CLASSES[kind](vocab)


def token_modality(config: Any) -> str:
    """What a sequence model's token rows spell, read from its config's tokenizer:
    ``molecule`` (SMILES/SELFIES), ``music`` (genlab's music event vocabulary), ``text``
    otherwise (``unknown`` before the tokenizer is known)."""
    kind = getattr(config, "tokenizer", "auto")
    if kind in ("smiles", "selfies"):
        return "molecule"
    if kind == "auto":
        return "unknown"
    from .music import VOCAB

    return "music" if tuple(getattr(config, "vocab", None) or ()) == VOCAB else "text"


def train_tokenizer(kind: str, texts: Sequence[str], *, vocab_size: int = 512,
                    alphabet: Iterable[str] = ()) -> CharTokenizer:
    """Train a tokenizer of ``kind`` on ``texts``.

    Args:
        kind: ``"char"``, ``"bpe"``, ``"smiles"``, ``"selfies"`` or ``"caption"``.
        texts: the training strings.
        vocab_size: BPE vocabulary size (ignored by the other kinds).
        alphabet: extra characters (char, BPE), tokens (smiles, selfies) or words
            (caption) to include.
    Returns:
        The tokenizer.
    """
    if kind == "char":
        return CharTokenizer.train([*texts, "".join(alphabet)])
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab_size, alphabet=alphabet)
    if kind in ("smiles", "selfies", "caption"):
        return CLASSES[kind].train(texts, alphabet=alphabet)
    raise ValueError(f"unknown tokenizer {kind!r}; choose 'char', 'bpe', 'smiles', 'selfies' or 'caption'")


def char_counts(texts: Iterable[str]) -> Counter:
    c: Counter = Counter()
    for t in texts:
        c.update(t)
    return c
