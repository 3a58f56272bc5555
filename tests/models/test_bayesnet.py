"""Bayesian networks: construction and validation, BIF/UAI, sampling, likelihood, learning,
save/load and bad input."""
import gzip

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

import genlab
from genlab.errors import DataError, NotFittedError
from genlab.models.pgm import BayesianNetwork, DiscreteTable, read_bif, read_csv, read_uai, write_bif, write_uai
from genlab.models.pgm.bif import BIFSyntaxError, parse_bif
from genlab.models.pgm.inference import brute_force_joint, marginals


@pytest.fixture(scope="module")
def asia():
    return read_bif("asia")


def sprinkler():
    return BayesianNetwork.from_cpds(
        {"rain": ["no", "yes"], "sprinkler": ["off", "on"], "wet": ["dry", "wet"]},
        {"sprinkler": ["rain"], "wet": ["rain", "sprinkler"]},
        {"rain": [0.8, 0.2], "sprinkler": [[0.6, 0.4], [0.99, 0.01]],
         "wet": [[[1.0, 0.0], [0.1, 0.9]], [[0.2, 0.8], [0.01, 0.99]]]})


def test_from_cpds_and_validation_errors():
    bn = sprinkler()
    assert bn.variables_ == ["rain", "sprinkler", "wet"]
    assert np.isclose(brute_force_joint(bn).sum(), 1.0)
    with pytest.raises(ValueError, match="cycle"):
        BayesianNetwork.from_cpds({"a": ["0", "1"], "b": ["0", "1"]}, {"a": ["b"], "b": ["a"]},
                                  {"a": [[.5, .5]] * 2, "b": [[.5, .5]] * 2})
    with pytest.raises(ValueError, match="sums to 0.9"):
        BayesianNetwork.from_cpds({"a": ["0", "1"]}, {}, {"a": [0.5, 0.4]})
    with pytest.raises(ValueError, match="shape"):
        BayesianNetwork.from_cpds({"a": ["0", "1"], "b": ["0", "1"]}, {"b": ["a"]},
                                  {"a": [.5, .5], "b": [.5, .5]})
    with pytest.raises(ValueError, match="not a variable"):
        BayesianNetwork.from_cpds({"a": ["0", "1"]}, {"a": ["zz"]}, {"a": [.5, .5]})


def test_bif_roundtrip_and_uai(asia, tmp_path):
    write_bif(asia, tmp_path / "a.bif.gz")
    back = read_bif(tmp_path / "a.bif.gz")
    assert back.variables_ == asia.variables_ and back.states_ == asia.states_
    assert all(np.array_equal(a, b) for a, b in zip(asia.cpds_, back.cpds_))
    write_uai(asia, tmp_path / "a.uai")
    u = read_uai(tmp_path / "a.uai", names=asia.variables_)
    assert all(np.array_equal(a, b) for a, b in zip(asia.cpds_, u.cpds_))


def test_bif_syntax_errors_name_the_line():
    good = gzip.open(genlab.models.pgm.bif.NETWORKS_DIR / "asia.bif.gz", "rt").read()
    lines = good.splitlines()
    k = next(i for i, l in enumerate(lines) if l.startswith("probability ( tub"))
    bad = "\n".join(lines[:k + 1] + ["  (yes) 0.05 0.95;"] + lines[k + 2:])  # missing comma is fine...
    bad = "\n".join(lines[:k + 1] + ["  (yes) 0.05, 0.95, 0.1;"] + lines[k + 2:])
    with pytest.raises(BIFSyntaxError, match=f"line {k + 2}.*3 numbers"):
        parse_bif(bad)
    bad = "\n".join(lines[:3] + ["  type discrete [ 2 ] { yes, no }"] + lines[4:])  # no ';'
    with pytest.raises(BIFSyntaxError, match="line 5"):
        parse_bif(bad)
    with pytest.raises(BIFSyntaxError, match="undeclared variable 'nope'"):
        parse_bif(good.replace("probability ( tub | asia )", "probability ( tub | nope )"))
    with pytest.raises(FileNotFoundError, match="shipped"):
        read_bif("no-such-network")


def test_forward_samples_pass_chi_square(asia):
    x = asia.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 8) and x.dtype == torch.int64  # the contract: tensors
    x = x.numpy()
    for j, m in enumerate(marginals(asia)):
        obs = np.bincount(x[:, j], minlength=len(m))
        ok = m > 0
        assert chisquare(obs[ok], m[ok] * len(x)).pvalue > 1e-3, asia.variables_[j]


def test_sampling_is_reproducible(asia):
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    assert np.array_equal(asia.sample(50, generator=g(1)), asia.sample(50, generator=g(1)))
    assert not np.array_equal(asia.sample(50, generator=g(1)), asia.sample(50, generator=g(2)))


def test_log_prob_is_exact_and_marginalises_missing(asia):
    joint = brute_force_joint(asia)
    x = asia.sample(200, generator=0).numpy()
    lp = asia.log_prob(x)
    assert lp.dtype == torch.float64 and lp.shape == (200,)
    assert np.allclose(lp.numpy(), np.log(joint[tuple(x.T)]), atol=1e-12)
    y = x[:5].copy()
    y[:, [1, 4]] = -1  # tub and bronc unknown
    want = np.log(joint.sum(axis=(1, 4))[tuple(np.delete(y, [1, 4], 1).T)])
    assert np.allclose(asia.log_prob(y).numpy(), want, atol=1e-12)


def test_mle_from_100k_samples_converges(asia):
    x = asia.sample(100_000, generator=1)
    learned = BayesianNetwork(structure="fixed")
    learned.variables_, learned.states_, learned.parents_ = asia.variables_, asia.states_, asia.parents_
    learned.cpds_ = [np.zeros_like(t) for t in asia.cpds_]
    learned.fit(asia.decode(x))
    joint = brute_force_joint(asia)
    for i, (a, b) in enumerate(zip(asia.cpds_, learned.cpds_)):
        # weight each row's error by how often its parent configuration occurs
        fam = tuple(asia.parents_[i])
        w = joint.sum(axis=tuple(k for k in range(8) if k not in fam)) if fam else np.ones(())
        err = np.abs(a - b).max(-1)
        assert (w * err).sum() < 0.01, asia.variables_[i]


def test_bayesian_estimators_smooth_unseen_rows():
    bn = sprinkler()
    x = bn.sample(50, generator=0)
    m = BayesianNetwork(structure="empty", estimator="bdeu").fit(bn.decode(x))
    assert all(np.all(t > 0) for t in m.cpds_)


def test_fit_from_csv_then_save_load_and_write_samples(tmp_path):
    bn = sprinkler()
    path = tmp_path / "t.csv"
    bn.decode(bn.sample(3000, generator=0)).to_csv(path)
    m = BayesianNetwork(max_indegree=2).fit(path)
    assert m.log_prob_kind == "exact"
    m.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    back = genlab.load(tmp_path / "m")
    assert type(back) is BayesianNetwork and back.config == m.config and back.edges() == m.edges()
    assert all(np.array_equal(a, b) for a, b in zip(m.cpds_, back.cpds_))
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert np.array_equal(m.sample(10, generator=g()), back.sample(10, generator=g()))
    assert back.write_samples(back.sample(5, generator=g()), tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == ",".join(back.variables_)
    assert not back.write_samples(back.sample(5), tmp_path / "s.png")
    ev = back.evaluate(read_csv(path))
    assert ev["nll_nats"] > 0 and ev["marginal_tvd"] < 0.05


def test_unfitted_and_bad_input(tmp_path, asia):
    with pytest.raises(NotFittedError):
        BayesianNetwork().sample(2)
    with pytest.raises(NotFittedError):
        BayesianNetwork().save(tmp_path / "never")
    p = tmp_path / "miss.csv"
    p.write_text("a,b\nx,1\n,2\ny,1\n")
    with pytest.raises(DataError, match="column 'a' has 1 missing value.*row 2"):
        BayesianNetwork().fit(p)
    BayesianNetwork(missing="drop").fit(p)
    with pytest.raises(ValueError, match="unknown variable 'xra'.*did you mean 'xray'"):
        asia.query("lung", {"xra": "yes"})
    with pytest.raises(ValueError, match="no state 'maybe'"):
        asia.query("lung", {"xray": "maybe"})
    table = DiscreteTable(np.zeros((2, 8), dtype=int), asia.variables_, [["unseen", "no"]] + asia.states_[1:])
    with pytest.raises(DataError, match="state.*'unseen'.*does not know"):
        asia.log_prob(table)
    with pytest.raises(DataError, match="shape"):
        asia.log_prob(np.zeros((2, 3), dtype=int))


def test_em_recovers_tables_with_missing_values():
    bn = sprinkler()
    x = bn.sample(20_000, generator=5)
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.2] = -1
    m = BayesianNetwork(structure="fixed", missing="em")
    m.variables_, m.states_, m.parents_ = bn.variables_, bn.states_, bn.parents_
    m.cpds_ = [np.full_like(t, 1 / t.shape[-1]) for t in bn.cpds_]
    m.fit(DiscreteTable(x, bn.variables_, bn.states_))
    assert np.abs(m.cpd("rain") - bn.cpd("rain")).max() < 0.02
    assert np.abs(m.cpd("wet")[0, 1] - bn.cpd("wet")[0, 1]).max() < 0.03


def test_bayesnet_report_figures(tmp_path):
    from genlab.models.pgm import read_bif
    from genlab.report.pgm import bayesnet_figures, cramers_v, dag_layout

    bn = read_bif("asia")

    class Run:
        def figure(self, name):
            return tmp_path / name

    test = bn.sample(500, generator=0)
    figs = bayesnet_figures(Run(), bn, test, n=2000)
    assert [t for t, _, _ in figs] == ["Learned graph", "Real vs synthetic marginals", "Pairwise association"]
    assert all(p.is_file() and p.stat().st_size > 1000 for _, p, _ in figs)
    pos = dag_layout(bn.parents_)
    for i, ps in enumerate(bn.parents_):  # parents sit in higher layers
        assert all(pos[p, 1] > pos[i, 1] for p in ps)
    v = cramers_v(test, bn.cardinalities)
    assert np.allclose(v, v.T) and np.all((v >= 0) & (v <= 1 + 1e-12))
    j, k = bn.index("tub"), bn.index("either")
    assert v[j, k] > 0.1  # either = tub or lung


# ----------------------------------------------------------------------------- labelled answers
def test_query_names_its_variables_and_states_and_stays_an_array():
    """Issue 14 point 6: bn.query returned a bare array; pgmpy names the states. The answer
    is still the same float64 ndarray (so every caller keeps working), with labels."""
    import copy
    import pickle

    from genlab.models.pgm.inference import Posterior

    bn = sprinkler()
    p = bn.query("wet", {"rain": "yes"})
    assert isinstance(p, np.ndarray) and isinstance(p, Posterior) and p.dtype == np.float64
    assert p.variables == ("wet",) and p.states == (("dry", "wet"),) and p.evidence == {"rain": "yes"}
    want = brute_force_joint(bn)[1].sum(0)
    want = want / want.sum()
    assert np.allclose(p, want) and p.shape == (2,) and p.argmax() == 1
    assert p["wet"] == pytest.approx(want[1]) and p["dry"] == p[0]
    assert p.to_dict() == pytest.approx({"dry": want[0], "wet": want[1]})
    assert repr(p).splitlines() == ["p(wet | rain=yes)", f"  wet=dry  {want[0]:.4g}", f"  wet=wet  {want[1]:.4g}"]
    assert str(p) == repr(p)
    with pytest.raises(KeyError, match="'wet' has no state 'damp'; its states: \\['dry', 'wet'\\]"):
        p["damp"]
    # evidence given by index is shown by label; no evidence shows none
    assert bn.query("wet", {"rain": 1}).evidence == {"rain": "yes"}
    assert repr(bn.query("rain")).splitlines()[0] == "p(rain)"

    # arithmetic and comparisons behave as on an ndarray; reductions are plain numbers
    s = p.sum()
    assert type(s) is np.float64 and s == pytest.approx(1.0)
    assert type(p.max()) is np.float64
    assert (2 * p).to_dict() == pytest.approx({"dry": 2 * want[0], "wet": 2 * want[1]})
    assert np.log(p).variables == ("wet",)
    assert float(p[1]) == p.tolist()[1] and type(np.asarray(p)) is np.ndarray
    # copies and pickles keep the labels; views, which may reorder cells, drop them
    for q in (p.copy(), copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert q.to_dict() == p.to_dict() and q.evidence == {"rain": "yes"}
    assert p[::-1].variables == () and repr(p[::-1]).startswith("array(")

    # a joint: axes in the order asked, labels per axis, tuples as keys
    j = bn.query(["wet", "sprinkler"], {"rain": "no"})
    assert j.variables == ("wet", "sprinkler") and j.states == (("dry", "wet"), ("off", "on"))
    assert j["wet", "on"] == pytest.approx(j[1, 1]) and np.allclose(j["dry"], j[0])
    assert set(j.to_dict()) == {("dry", "off"), ("dry", "on"), ("wet", "off"), ("wet", "on")}
    assert j.T.variables == () and np.allclose(j.T, np.asarray(j).T)
    assert repr(j).splitlines()[1].startswith("  wet=dry, sprinkler=off")
    marg = bn.query(["wet", "sprinkler"], {"rain": "no"}, joint=False)
    assert marg["wet"].variables == ("wet",) and marg["sprinkler"].evidence == {"rain": "no"}


def test_query_batch_and_junction_tree_answers_are_labelled(asia):
    from genlab.models.pgm.inference import Posterior

    qs, evs = ["lung", "tub", "xray"], [{"smoke": "yes"}, {}, {"either": "no"}]
    for method in ("ve", "jt"):
        got = asia.query_batch(qs, evs, method=method)
        assert all(isinstance(g, Posterior) for g in got)
        assert [g.variables for g in got] == [(q,) for q in qs]
        assert [g.evidence for g in got] == evs
        assert got[0].states == (tuple(asia.states_[asia.index("lung")]),)
        for g, q, e in zip(got, qs, evs):
            assert np.allclose(g, asia.query(q, e), atol=1e-12)
    ms = marginals(asia, {"xray": "yes"})
    assert [m.variables for m in ms] == [(v,) for v in asia.variables_]
    assert all(m.evidence == {"xray": "yes"} for m in ms)
    assert ms[asia.index("xray")].to_dict() == pytest.approx({"yes": 1.0, "no": 0.0})
    # map_query already answers with names and labels
    assert set(asia.map_query(["lung"], {"smoke": "yes"})) == {"lung"}


def test_a_long_joint_shows_its_first_rows_and_counts_the_rest():
    from genlab.models.pgm.inference import Posterior

    p = Posterior(np.full((5, 6), 1 / 30), ["a", "b"], [list("vwxyz"), list("012345")], {"c": "on"})
    lines = repr(p).splitlines()
    assert lines[0] == "p(a, b | c=on)" and len(lines) == 1 + Posterior.MAX_ROWS + 1
    assert lines[-1] == "  ... 10 more (to_dict() has them all)"
    assert len(p.to_dict()) == 30
    with pytest.raises(ValueError, match="cannot carry labels"):
        Posterior(np.ones(3) / 3, ["a"], [["x", "y"]])
