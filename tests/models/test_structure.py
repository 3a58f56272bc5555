"""Structure learning: hill climbing (BIC/BDeu/K2, constraints), Chow-Liu, PC."""
import numpy as np
import pytest
import torch

from genlab.models.pgm import BayesianNetwork, read_bif
from genlab.models.pgm.structure import (Scorer, chow_liu, ci_test, hill_climb, pc,
                                         structural_hamming_distance)


@pytest.fixture(scope="module")
def asia_data():
    bn = read_bif("asia")
    return bn, bn.sample(10_000, generator=0)


def edges(ps):
    return {(p, v) for v, pv in enumerate(ps) for p in pv}


def test_hill_climb_bic_beats_the_true_dag_and_pgmpy(asia_data):
    bn, x = asia_data
    ps = hill_climb(x, bn.cardinalities, score="bic")
    sc = Scorer(x, bn.cardinalities, "bic")
    assert sc.total(ps) >= sc.total(bn.parents_) - 1e-6
    assert structural_hamming_distance(edges(ps), edges(bn.parents_)) <= 3
    pytest.importorskip("pgmpy")
    import warnings

    import pandas as pd
    from pgmpy.estimators import HillClimbSearch

    df = pd.DataFrame({v: np.array(bn.states_[j])[x[:, j]] for j, v in enumerate(bn.variables_)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dag = HillClimbSearch(df).estimate(scoring_method="bic-d", show_progress=False)
    pos = {v: i for i, v in enumerate(bn.variables_)}
    theirs = [[pos[u] for u, w in dag.edges() if w == v] for v in bn.variables_]
    assert sc.total(ps) >= sc.total(theirs) - 1e-6


@pytest.mark.parametrize("score", ["bdeu", "k2"])
def test_other_scores_and_constraints(asia_data, score):
    bn, x = asia_data
    card = bn.cardinalities
    ps = hill_climb(x, card, score=score, max_indegree=1, black_list=[(2, 3), (3, 2)])
    assert max(len(p) for p in ps) <= 1
    assert (2, 3) not in edges(ps) and (3, 2) not in edges(ps)
    wl = [(2, 3), (2, 4)]
    ps = hill_climb(x, card, score=score, white_list=wl, fixed_edges=[(0, 1)])
    assert edges(ps) <= set(wl) | {(0, 1)} and (0, 1) in edges(ps)


def test_chow_liu_recovers_a_tree():
    bn = BayesianNetwork.from_cpds(
        {k: ["0", "1"] for k in "abcd"}, {"b": ["a"], "c": ["a"], "d": ["c"]},
        {"a": [0.4, 0.6], "b": [[0.9, 0.1], [0.2, 0.8]], "c": [[0.8, 0.2], [0.3, 0.7]],
         "d": [[0.85, 0.15], [0.1, 0.9]]})
    x = bn.sample(20_000, generator=0)
    ps = chow_liu(x, bn.cardinalities)
    skel = {frozenset(e) for e in edges(ps)}
    assert skel == {frozenset(e) for e in edges(bn.parents_)}


def test_pc_finds_the_v_structure():
    bn = BayesianNetwork.from_cpds(
        {k: ["0", "1"] for k in "abc"}, {"c": ["a", "b"]},
        {"a": [0.5, 0.5], "b": [0.4, 0.6], "c": [[[0.9, 0.1], [0.3, 0.7]], [[0.4, 0.6], [0.05, 0.95]]]})
    x = bn.sample(20_000, generator=1)
    assert ci_test(x, bn.cardinalities, 0, 1, ()) > 0.01
    assert ci_test(x, bn.cardinalities, 0, 1, (2,)) < 0.01
    for method in ("chi_square", "g_test"):
        assert edges(pc(x, bn.cardinalities, method=method)) == {(0, 2), (1, 2)}


@pytest.mark.parametrize("structure", ["chow_liu", "pc", "hill_climb"])
def test_fit_with_each_structure(asia_data, structure):
    bn, x = asia_data
    m = BayesianNetwork(structure=structure).fit(bn.decode(x[:3000]))
    assert torch.isfinite(m.log_prob(x[:10])).all()
