"""Probabilistic graphical models: Bayesian networks, Markov random fields and RBMs.

Importing this package registers ``bayesnet``, ``mrf`` and ``rbm`` in ``genlab.MODELS``.
"""
from .bayesnet import BayesianNetwork, BayesNetConfig
from .bif import read_bif, read_uai, write_bif, write_uai
from .data import DiscreteTable, as_table, read_csv
from .junction import JunctionTree
from .mrf import PairwiseGraph
from .mrf_model import GridMRF, MRFConfig
from .rbm import RBM, RBMConfig

__all__ = ["BayesianNetwork", "BayesNetConfig", "DiscreteTable", "GridMRF", "JunctionTree", "MRFConfig", "PairwiseGraph", "RBM", "RBMConfig", "as_table",
           "read_bif", "read_csv", "read_uai", "write_bif", "write_uai"]
