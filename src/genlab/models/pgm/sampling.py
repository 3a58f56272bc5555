"""Sampling from Bayesian networks: forward (ancestral), rejection, likelihood weighting,
Gibbs (Koller & Friedman, 2009, §12.1-12.3).

Forward sampling is vectorised over rows: one pass over the nodes in topological order,
each drawing all ``n`` values at once from the table rows its parents select (a gather of
cumulative probabilities and a comparison with uniforms) — no per-row Python and no sort.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DataError

MAX_BATCH = 1 << 20


def make_rng(generator: Any = None) -> np.random.Generator:
    """A numpy Generator from a ``torch.Generator`` (seeded draws stay reproducible), an
    ``np.random.Generator``, an int seed, or ``None`` (fresh entropy)."""
    if generator is None:
        return np.random.default_rng()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)):
        return np.random.default_rng(int(generator))
    import torch

    if isinstance(generator, torch.Generator):
        seed = torch.randint(0, 2**62, (2,), generator=generator).tolist()
        return np.random.default_rng(seed)
    raise TypeError(f"generator must be a torch.Generator, np.random.Generator or int, "
                    f"got {type(generator).__name__}")


def _cum_tables(bn) -> list[list[np.ndarray]]:
    """Per node, the cumulative row sums as separate contiguous columns (the last, 1,
    dropped): drawing a state is then ``sum_k [u >= cum_k[row]]``, a few 1-D gathers."""
    ct = bn._cache.get("cum")
    if ct is None:
        ct = []
        for t in bn.cpds_:
            c = np.cumsum(t.reshape(-1, t.shape[-1]), 1)[:, :-1]
            ct.append([np.ascontiguousarray(c[:, k]) for k in range(c.shape[1])])
        bn._cache["cum"] = ct
    return ct


def _draw(cols: list[np.ndarray], row: np.ndarray | None, u: np.ndarray,
          out: np.ndarray) -> None:
    """Write into ``out`` the state whose cumulative interval holds ``u``."""
    if not cols:
        out[:] = 0
    elif row is None:  # a root: compare with scalars (searchsorted is slower here)
        np.greater_equal(u, cols[0][0], out=out, casting="unsafe")
        for c in cols[1:]:
            out += u >= c[0]
    else:
        np.greater_equal(u, cols[0][row], out=out, casting="unsafe")
        for c in cols[1:]:
            out += u >= c[row]


def forward_sample(bn, n: int, rng: np.random.Generator, *,
                   fixed: dict[int, int] | None = None) -> np.ndarray:
    """``n`` ancestral samples ``(n, D)`` int64 (column-major: each column contiguous);
    ``fixed`` clamps variables (for likelihood weighting).

    Uniforms are drawn one node at a time into a reused buffer (not a ``(D, n)`` block:
    less memory to touch); the parent-configuration index is built in place.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cum = _cum_tables(bn)
    card = bn.cardinalities
    d = len(card)
    out = np.empty((d, n), dtype=np.int64)
    u = np.empty(n)
    row = np.empty(n, dtype=np.int64)
    fixed = fixed or {}
    for i in bn.topo_order():
        ps = bn.parents_[i]
        if i in fixed:
            out[i] = fixed[i]
            continue
        rng.random(out=u)
        if ps:
            if len(ps) == 1:
                r = out[ps[0]]
            else:
                np.multiply(out[ps[0]], card[ps[1]], out=row)
                row += out[ps[1]]
                for p in ps[2:]:
                    row *= card[p]
                    row += out[p]
                r = row
        else:
            r = None
        _draw(cum[i], r, u, out[i])
    return out.T


def likelihood_weighting(bn, n: int, evidence: dict[int, int], rng: np.random.Generator
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Samples with the evidence clamped and their log importance weights
    ``sum_e log p(e | pa(e))``."""
    x = forward_sample(bn, n, rng, fixed=evidence)
    logw = np.zeros(n)
    lt = bn._log_tables()
    for i in evidence:
        logw += lt[i][bn._row_index(x, i), evidence[i]]
    return x, logw


def rejection_sample(bn, n: int, evidence: dict[int, int], rng: np.random.Generator, *,
                     min_acceptance: float = 0.0, max_draws: int = 10**8) -> np.ndarray:
    """``n`` exact samples from ``p(x | evidence)`` by discarding mismatching forward draws."""
    keep, got, drawn = [], 0, 0
    idx = np.array(list(evidence))
    val = np.array([evidence[i] for i in idx])
    batch = max(1000, n)
    while got < n:
        x = forward_sample(bn, batch, rng)
        drawn += batch
        ok = x[(x[:, idx] == val).all(1)] if len(idx) else x
        keep.append(ok)
        got += len(ok)
        rate = got / drawn
        if (drawn >= 10_000 and rate < min_acceptance) or drawn >= max_draws:
            raise DataError(f"rejection sampling accepts {rate:.2%} of draws for this evidence; "
                            "use method='gibbs' or likelihood weighting")
        if got < n:  # size the next batch from the acceptance rate so far
            batch = int(min(MAX_BATCH, max(1000, (n - got) / max(rate, 1e-4) * 1.1)))
    return np.concatenate(keep)[:n]


def gibbs_sample(bn, n: int, evidence: dict[int, int], rng: np.random.Generator, *,
                 burn_in: int = 200, chains: int = 64, thin: int = 1) -> np.ndarray:
    """Gibbs sampling over the non-evidence variables, ``chains`` parallel chains started
    from likelihood-weighted draws; each sweep resamples every free variable from its
    Markov-blanket conditional ``p(x_v | pa_v) * prod_c p(x_c | pa_c)``.

    Requires positive conditionals for ergodicity (deterministic tables can trap chains).
    """
    card = bn.cardinalities
    children = bn.children()
    lt = bn._log_tables()
    x, _ = likelihood_weighting(bn, chains, evidence, rng)
    free = [i for i in range(len(card)) if i not in evidence]
    steps = burn_in + -(-n // chains) * thin
    out = []
    for s in range(steps):
        for v in free:
            logits = np.empty((chains, card[v]))
            for k in range(card[v]):
                x[:, v] = k
                acc = lt[v][bn._row_index(x, v), k]
                for c in children[v]:
                    acc = acc + lt[c][bn._row_index(x, c), x[:, c]]
                logits[:, k] = acc
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            cum = np.cumsum(p, 1)
            u = rng.random(chains) * cum[:, -1]
            x[:, v] = (u[:, None] >= cum[:, :-1]).sum(1)
        if s >= burn_in and (s - burn_in) % thin == 0:
            out.append(x.copy())
    return np.concatenate(out)[:n]


def conditional_sample(bn, n: int, evidence: dict[int, int], rng: np.random.Generator, *,
                       method: str = "auto") -> np.ndarray:
    if method not in ("auto", "rejection", "gibbs", "likelihood_weighting"):
        raise ValueError(f"method must be auto, rejection, gibbs or likelihood_weighting, got {method!r}")
    if method == "likelihood_weighting":  # resample by weight into unweighted rows
        x, logw = likelihood_weighting(bn, max(n * 10, 10_000), evidence, rng)
        w = np.exp(logw - logw.max())
        return x[rng.choice(len(x), size=n, p=w / w.sum())]
    if method == "gibbs":
        return gibbs_sample(bn, n, evidence, rng)
    try:
        return rejection_sample(bn, n, evidence, rng, min_acceptance=0.01 if method == "auto" else 0.0)
    except DataError:
        if method == "rejection":
            raise
        return gibbs_sample(bn, n, evidence, rng)
