"""``check_model``: the genlab contract as a check a third-party family can run.

``genlab.testing.check_model(Model(...), data)`` fits the model on ``data`` and checks what
the contract promises, driven by the model's declared ``tags``:

* the tags tell the truth: every declared capability has its methods, and no method of a
  capability is there undeclared;
* ``fit`` returns the model and leaves it ``fitted``;
* ``sample(n, generator=...)`` gives ``n`` samples of ``tags.sample_shape``, the same ones
  for the same seed;
* ``log_prob``: ``LogProbUnavailableError`` for ``log_prob_kind == "none"``, else one finite
  float64 value per example; a keyword it does not declare is a ``TypeError``;
* a ``lower_bound`` model that takes ``k`` (importance samples): the bound with ``k = 64``
  is on average at least the one with ``k = 1`` (IWAE tightens with ``k``);
* an ``exact`` model: ``exp(log_prob)`` sums to 1 (to 1e-6) over a tiny discrete space —
  the one passed as ``space=``, else every joint state of a ``DiscreteTable``'s first
  columns (the rest missing, so summed out) or, for a token model with a ``vocab_size``,
  every continuation of the first data row's first token by up to 4,096 token strings
  (``<pad>``, id 0, is padding and scored 0, so it is left out);
* a class-conditional model (``num_classes > 0``): ``sample(n, y=...)`` depends on ``y``;
* ``save`` / ``genlab.load`` round trip: the loaded model draws the same samples for the
  same seed and gives the same ``log_prob``.

It raises ``AssertionError`` listing every check that failed (all are run), and returns
the names of the checks that passed. The tests of genlab run it over the shipped families
(``tests/test_testing.py``).
"""
from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import GenerativeModel, load
from .capabilities import METHODS, Tags
from .data.tokenizers import PAD_ID
from .errors import LogProbUnavailableError

#: the most outcomes the normalisation check of an ``exact`` model enumerates
SPACE_LIMIT = 4096


def _rows(data: Any, n: int) -> Any:
    """The first ``n`` examples as the model takes them (state codes for tables)."""
    if hasattr(data, "codes"):  # a DiscreteTable (Bayesian networks)
        return data.codes[:n]
    return data.x[:n] if hasattr(data, "x") else data[:n]


def _labels(data: Any, n: int) -> Any:
    y = getattr(data, "y", None)
    return None if y is None else y[:n]


def _seeded(tags: Tags, g: Any) -> dict[str, Any]:
    """A fresh seeded generator for ``log_prob`` when it takes one (sampled bounds, AIS)."""
    return {"generator": g()} if "generator" in tags.log_prob_options else {}


def tiny_space(model: Any, data: Any, tags: Tags, limit: int = SPACE_LIMIT) -> tuple[Any, str] | None:
    """A complete set of outcomes of at most ``limit`` on which an ``exact`` model's
    probabilities must sum to 1, and its description; ``None`` if none is known.

    * a ``DiscreteTable`` (``codes``/``states``): every joint state of the leading columns
      whose state counts multiply to at most ``limit``, the other columns missing (``-1``,
      summed out by ``log_prob``);
    * a token model (``tags.modality`` text, molecule or music, with an integer
      ``vocab_size``): the first data row's first token followed by every string of ``L``
      tokens other than ``<pad>``, ``L`` the longest with at most ``limit`` strings.
    """
    if hasattr(data, "codes") and hasattr(data, "states"):
        cards = [len(s) for s in data.states]
        m, total = 0, 1
        while m < len(cards) and total * cards[m] <= limit:
            total *= cards[m]
            m += 1
        if m == 0:
            return None
        grid = np.array(list(itertools.product(*[range(c) for c in cards[:m]])), dtype=np.int64)
        out = np.full((len(grid), len(cards)), -1, dtype=np.int64)
        out[:, :m] = grid
        rest = f", the other {len(cards) - m} summed out" if m < len(cards) else ""
        return out, f"all {len(grid):,} joint states of the first {m} columns{rest}"
    vocab = getattr(model, "vocab_size", None)
    if tags.modality in ("text", "molecule", "music") and isinstance(vocab, int) and vocab > 1:
        rows = _rows(data, 1) if not isinstance(data, str) else None
        if rows is None or not torch.is_tensor(rows := torch.as_tensor(rows)) or rows.dim() != 2:
            return None
        toks = [t for t in range(vocab) if t != PAD_ID]
        length = max(1, int(math.log(limit) // math.log(len(toks)))) if len(toks) > 1 else 1
        if len(toks) ** length > limit:
            return None
        cont = torch.tensor(list(itertools.product(toks, repeat=length)), dtype=torch.long)
        first = torch.full((len(cont), 1), int(rows[0, 0]), dtype=torch.long)
        return torch.cat([first, cont], 1), (f"all {len(cont):,} strings of {length} tokens after "
                                             f"token {int(rows[0, 0])}")
    return None


def _same(a: Any, b: Any) -> bool:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return a.shape == b.shape and bool(torch.equal(a, b))


def check_model(model: GenerativeModel, data: Any, *, train: Any = None, n: int = 8,
                fitted: bool = False, space: Any = None) -> list[str]:
    """Check that ``model`` keeps the genlab contract (see the module docstring).

    Args:
        model: an unfitted model (or a fitted one with ``fitted=True``).
        data: what ``fit`` takes (a ``Dataset``, a ``DiscreteTable``, a name); its first
            rows are scored with ``log_prob``.
        train: passed to ``fit`` (a ``TrainConfig`` or dict; keep it tiny).
        n: samples drawn per check.
        fitted: skip ``fit`` (the model is trained already).
        space: for an ``exact`` model, every outcome of a tiny discrete space (what
            ``log_prob`` takes); default ``tiny_space(model, data, tags)``.
    Returns:
        the names of the checks that passed.
    Raises:
        AssertionError: naming every check that failed.
    """
    passed: list[str] = []
    failed: list[str] = []

    def check(name: str, ok: bool, why: str = "") -> None:
        (passed if ok else failed).append(name if ok else f"{name}: {why}")

    name = type(model).__name__
    if not fitted:
        out = model.fit(data, train) if train is not None else model.fit(data)
        check("fit returns the model", out is model, f"{name}.fit returned {type(out).__name__}")
    check("fitted", bool(model.fitted), f"{name}.fitted is False after fit")
    tags = model.tags
    check("tags", isinstance(tags, Tags), f"{name}.tags is {type(tags).__name__}, not Tags")
    for cap, methods in METHODS.items():
        has = all(callable(getattr(model, m, None)) for m in methods)
        if getattr(tags, cap) != has:
            check(f"tag {cap}", False, f"tags.{cap} is {getattr(tags, cap)} but the methods {methods} "
                                       f"are {'there' if has else 'missing'}")

    g = lambda: torch.Generator().manual_seed(1234)  # noqa: E731
    with torch.no_grad():
        x1 = model.sample(n, generator=g())
        x2 = model.sample(n, generator=g())
    check("sample count", len(x1) == n, f"sample({n}) gave {len(x1)}")
    if tags.sample_shape:
        check("sample shape", tuple(torch.as_tensor(x1).shape[1:]) == tuple(tags.sample_shape),
              f"samples are {tuple(torch.as_tensor(x1).shape[1:])}, tags.sample_shape {tags.sample_shape}")
    check("sample is seeded", _same(x1, x2), "two draws with the same seed differ")

    rows = _rows(data, n) if not isinstance(data, str) else None
    lp = None
    if tags.log_prob_kind == "none":
        try:
            model.log_prob(x1)
            check("log_prob refused", False, "log_prob_kind is 'none' but log_prob returned")
        except LogProbUnavailableError:
            check("log_prob refused", True)
    elif rows is not None:
        y = _labels(data, n) if tags.conditional else None
        try:
            with torch.no_grad():
                lp = model.log_prob(rows, y=y, **_seeded(tags, g))
        except ValueError as e:  # e.g. a Bernoulli likelihood refusing non-binary data: allowed
            passed.append(f"log_prob refuses data outside its likelihood ({e})")
            rows = None
    if lp is not None:
        lp_t = torch.as_tensor(lp)
        check("log_prob shape", tuple(lp_t.shape) == (len(rows),), f"log_prob gave shape {tuple(lp_t.shape)}")
        check("log_prob float64", lp_t.dtype == torch.float64, f"log_prob gave {lp_t.dtype}")
        check("log_prob finite", bool(torch.isfinite(lp_t).all()), "log_prob has NaN or inf")
        try:
            model.log_prob(rows, not_an_option=1)
            check("log_prob refuses unknown options", False, "log_prob(x, not_an_option=1) was accepted")
        except TypeError:
            check("log_prob refuses unknown options", True)
        if tags.log_prob_kind == "lower_bound" and "k" in tags.log_prob_options:
            # E[bound(k=64)] >= E[bound(k=1)] (the ELBO); the k=1 estimate is noisy, so it is
            # averaged over 16 draws and the k=64 mean may fall short of it by 3 standard errors
            with torch.no_grad():
                gen = g()
                ones = torch.stack([torch.as_tensor(model.log_prob(rows, y=y, k=1, generator=gen))
                                    for _ in range(16)])
                hi = torch.as_tensor(model.log_prob(rows, y=y, k=64, generator=gen)).mean()
            lo, se = ones.mean(), ones.std() / ones.numel() ** 0.5
            check("IWAE bound tightens with k", bool(hi >= lo - 3 * se),
                  f"mean bound with k=64 ({float(hi):.4f}) is below k=1 ({float(lo):.4f} +- {float(se):.4f})")
    if tags.log_prob_kind == "exact":
        found = (space, "the given space") if space is not None else tiny_space(model, data, tags)
        if found is not None:
            with torch.no_grad():
                total = float(torch.logsumexp(torch.as_tensor(model.log_prob(found[0])).double(), 0))
            check("exp(log_prob) sums to 1", abs(total) <= 1e-6,
                  f"over {found[1]} it sums to {math.exp(total):.8f}")
    if tags.conditional and "y" in tags.sample_options:
        with torch.no_grad():
            a = model.sample(n, generator=g(), y=torch.zeros(n, dtype=torch.long))
            b = model.sample(n, generator=g(), y=torch.full((n,), tags.num_classes - 1, dtype=torch.long))
        check("sample honours y", not _same(a, b), "samples for the first and last class are identical")

    try:
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / "m")
            back = load(Path(tmp) / "m")
            check("load gives the same class", type(back) is type(model), f"loaded a {type(back).__name__}")
            with torch.no_grad():
                check("loaded model samples the same", _same(back.sample(n, generator=g()), x1),
                      "the loaded model draws other samples for the same seed")
                if lp is not None and tags.log_prob_kind != "lower_bound":
                    lp_back = back.log_prob(rows, y=_labels(data, n) if tags.conditional else None,
                                            **_seeded(tags, g))
                    check("loaded model scores the same", _same(lp_back, lp), "log_prob differs after load")
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        check("save and load", False, f"{type(e).__name__}: {e}")
    if failed:
        raise AssertionError(f"{name} breaks the genlab contract:\n  " + "\n  ".join(failed))
    return passed
