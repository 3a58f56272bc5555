"""Settings of ``BayesianNetwork.fit`` (structure learning, parameter estimation,
discretisation, missing values)."""
from __future__ import annotations

import dataclasses

from ...base import Config

STRUCTURES = ("hill_climb", "chow_liu", "pc", "empty", "fixed")
ESTIMATORS = ("mle", "bdeu", "k2", "dirichlet")


@dataclasses.dataclass(frozen=True)
class BayesNetConfig(Config):
    """How ``fit`` learns a network.

    Args:
        structure: ``hill_climb``, ``chow_liu``, ``pc``, ``empty`` (independent columns) or
            ``fixed`` (keep the current DAG, learn only the tables).
        score: hill-climbing score: ``bic``, ``bdeu`` or ``k2``.
        max_indegree: most parents a node may get.
        tabu_length: hill climbing does not undo its last ``tabu_length`` moves.
        max_iter: most hill-climbing moves.
        estimator: parameters: ``mle``, ``bdeu`` (``equivalent_sample_size``), ``k2`` (+1)
            or ``dirichlet`` (+``pseudo_count``). Default ``bdeu``: unseen parent/child
            combinations keep a small probability, so held-out rows never get log p = -inf.
        bins / max_categories: discretisation of numeric columns (see ``pgm.data``).
        missing: ``error`` on missing values, ``drop`` rows, or ``em`` (expectation-maximisation).
        em_iter: most EM iterations.
        significance: PC's independence-test level; ``ci_test``: ``chi_square`` or ``g_test``.
    """

    structure: str = "hill_climb"
    score: str = "bic"
    max_indegree: int = 3
    tabu_length: int = 100
    max_iter: int = 10_000
    estimator: str = "bdeu"
    pseudo_count: float = 1.0
    equivalent_sample_size: float = 10.0
    bins: int = 5
    max_categories: int = 10
    missing: str = "error"
    em_iter: int = 50
    significance: float = 0.01
    ci_test: str = "chi_square"

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {self.structure!r}")
        if self.score not in ("bic", "bdeu", "k2"):
            raise ValueError(f"score must be 'bic', 'bdeu' or 'k2', got {self.score!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.missing not in ("error", "drop", "em"):
            raise ValueError(f"missing must be 'error', 'drop' or 'em', got {self.missing!r}")
        if self.ci_test not in ("chi_square", "g_test"):
            raise ValueError(f"ci_test must be 'chi_square' or 'g_test', got {self.ci_test!r}")
        if self.max_indegree < 0 or self.bins < 2 or self.tabu_length < 0:
            raise ValueError("max_indegree >= 0, bins >= 2 and tabu_length >= 0 are required")
