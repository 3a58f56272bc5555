"""Metrics: pure functions in ``functional`` plus small stateful classes in ``classes``.

Molecule metrics (MOSES, GuacaMol's KL score) take SMILES: ``molecules``.
Sample-quality metrics operate on judge outputs — feature tensors ``(B, F)`` or class
probabilities ``(B, K)`` — and every class result names its ``feature_space``.
"""
from . import functional, molecules
from .classes import (
    FID, KID, Diversity, InceptionScore, Memorization, Metric, ModeCoverage, PrecisionRecall,
)
from .functional import (
    bits_per_dim, diversity, fid, frechet_distance, inception_score, kid, memorization,
    mode_coverage, nll_nats, prdc, toy_mode_metrics,
)
from .molecules import MoleculeMetrics, moses_metrics

__all__ = [
    "functional",
    "fid", "frechet_distance", "kid", "inception_score", "prdc", "mode_coverage",
    "memorization", "diversity", "toy_mode_metrics", "nll_nats", "bits_per_dim",
    "Metric", "FID", "KID", "InceptionScore", "PrecisionRecall", "ModeCoverage",
    "Memorization", "Diversity",
    "molecules", "moses_metrics", "MoleculeMetrics",
]
