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
    assert x.shape == (20_000, 8) and x.dtype == np.int64
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
    x = asia.sample(200, generator=0)
    assert np.allclose(asia.log_prob(x), np.log(joint[tuple(x.T)]), atol=1e-12)
    y = x[:5].copy()
    y[:, [1, 4]] = -1  # tub and bronc unknown
    want = np.log(joint.sum(axis=(1, 4))[tuple(np.delete(y, [1, 4], 1).T)])
    assert np.allclose(asia.log_prob(y), want, atol=1e-12)


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
