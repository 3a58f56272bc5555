"""Exact inference (VE, junction tree, MAP/MPE) against brute force and pgmpy; approximate
conditional sampling against exact posteriors."""
import gzip
import itertools

import numpy as np
import pytest

from genlab.models.pgm import JunctionTree, read_bif
from genlab.models.pgm.bif import NETWORKS_DIR
from genlab.models.pgm.inference import brute_force_joint, log_evidence, map_query, query
from genlab.models.pgm.sampling import gibbs_sample, likelihood_weighting, make_rng

SMALL = ["asia", "cancer", "earthquake", "sachs"]


def tolerance(bn):
    """1e-9, or 1e-6 where a shipped table sums to one only within 1e-7 (sachs, alarm):
    pruning barren nodes assumes exact sums, as pgmpy does."""
    dev = max(np.abs(t.sum(-1) - 1).max() for t in bn.cpds_)
    return 1e-9 if dev < 1e-12 else 1e-6


def random_queries(bn, k, seed=0, n_ev=2):
    rng = np.random.default_rng(seed)
    rows = bn.sample(k, generator=seed)  # evidence drawn from the model: probability > 0
    for row in rows:
        vs = rng.choice(len(bn.variables_), n_ev + 1, replace=False)
        yield bn.variables_[vs[0]], {bn.variables_[v]: bn.states_[v][row[v]] for v in vs[1:]}


def bf_posterior(bn, joint, q, ev):
    t = joint
    idx = [slice(None)] * len(bn.variables_)
    for v, s in ev.items():
        idx[bn.index(v)] = bn.state_index(v, s)
    t = t[tuple(idx)]
    rest = [bn.index(v) for v in bn.variables_ if v not in ev]
    keep = rest.index(bn.index(q))
    m = t.sum(axis=tuple(a for a in range(t.ndim) if a != keep))
    return m / m.sum()


@pytest.mark.parametrize("name", SMALL)
def test_ve_and_junction_tree_equal_brute_force(name):
    bn = read_bif(name)
    joint = brute_force_joint(bn)
    jt = JunctionTree(bn)
    qs = list(random_queries(bn, 25))
    tol = tolerance(bn)
    batch = jt.query_batch([q for q, _ in qs], [e for _, e in qs])
    for (q, ev), b in zip(qs, batch):
        want = bf_posterior(bn, joint, q, ev)
        assert np.abs(query(bn, q, ev) - want).max() < tol
        for h in ("weighted_min_fill", "min_size"):
            assert np.abs(query(bn, q, ev, elimination=h) - want).max() < tol
        assert np.abs(b - want).max() < tol
    for q, ev in qs[:5]:
        idx = tuple(bn.state_index(v, ev[v]) if v in ev else slice(None) for v in bn.variables_)
        assert np.isclose(log_evidence(bn, ev), np.log(joint[idx].sum()), atol=tol)


@pytest.mark.parametrize("name", ["asia", "sachs"])
def test_map_and_mpe_equal_brute_force(name):
    bn = read_bif(name)
    joint = brute_force_joint(bn)
    for q, ev in random_queries(bn, 10, seed=3):
        idx = tuple(bn.state_index(v, ev[v]) if v in ev else slice(None) for v in bn.variables_)
        sub = joint[idx]
        free = [v for v in bn.variables_ if v not in ev]
        mpe = map_query(bn, None, ev)
        best = np.unravel_index(np.argmax(sub), sub.shape)
        got = tuple(bn.state_index(v, mpe[v]) for v in free)
        assert np.isclose(sub[got], sub[best], rtol=1e-12)
        two = free[:2]
        m = map_query(bn, two, ev)
        marg = sub.sum(axis=tuple(range(2, sub.ndim)))
        assert np.isclose(marg[tuple(bn.state_index(v, m[v]) for v in two)], marg.max(), rtol=1e-12)


def test_joint_query_and_errors():
    bn = read_bif("asia")
    joint = brute_force_joint(bn)
    t = query(bn, ["lung", "tub"], {"xray": "yes"})
    want = joint[:, :, :, :, :, :, 0, :].sum(axis=(0, 2, 4, 5, 6))  # axes: tub, lung -> (tub, lung)
    assert np.allclose(t, (want / want.sum()).T, atol=1e-12)
    with pytest.raises(ValueError, match="both queried and observed"):
        query(bn, "lung", {"lung": "yes"})
    with pytest.raises(ValueError, match="probability zero"):
        query(bn, "xray", {"either": "no", "tub": "yes"})


def test_against_pgmpy():
    pytest.importorskip("pgmpy")
    import warnings

    from pgmpy.inference import VariableElimination
    from pgmpy.readwrite import BIFReader

    for name in ["asia", "alarm"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = BIFReader(string=gzip.open(NETWORKS_DIR / f"{name}.bif.gz", "rt").read()).get_model()
        bn = read_bif(name)
        ve = VariableElimination(pm)
        tol = tolerance(bn)
        for q, ev in random_queries(bn, 8, seed=1, n_ev=3):
            f = ve.query([q], evidence=ev, show_progress=False)
            theirs = np.array([f.values[f.state_names[q].index(s)] for s in bn.states_[bn.index(q)]])
            assert np.abs(theirs - query(bn, q, ev)).max() < tol
            free = [v for v in bn.variables_ if v not in ev][:3]
            mine, pg = map_query(bn, free, ev), ve.map_query(free, evidence=ev, show_progress=False)
            tm = query(bn, free, ev)
            val = lambda a: tm[tuple(bn.state_index(v, a[v]) for v in free)]  # noqa: E731,B023 — used at once
            assert np.isclose(val(mine), val(pg), rtol=1e-9)


def test_conditional_sampling_matches_posterior():
    bn = read_bif("asia")
    ev = {"xray": "yes", "smoke": "no"}
    want = query(bn, "lung", ev)
    x = bn.sample(20_000, generator=0, evidence=ev)
    j = bn.index("lung")
    assert (x[:, bn.index("xray")] == 0).all()
    assert np.abs(np.bincount(x[:, j], minlength=2) / len(x) - want).max() < 0.02
    codes = bn.evidence_codes(ev)
    xs, logw = likelihood_weighting(bn, 50_000, codes, make_rng(1))
    w = np.exp(logw)
    est = np.array([w[xs[:, j] == k].sum() for k in range(2)]) / w.sum()
    assert np.abs(est - want).max() < 0.02
    sachs = read_bif("sachs")  # no zero entries: Gibbs is ergodic
    ev = {"PKA": sachs.states_[sachs.index("PKA")][0]}
    g = gibbs_sample(sachs, 6000, sachs.evidence_codes(ev), make_rng(2), burn_in=50)
    j = sachs.index("Raf")
    want = query(sachs, "Raf", ev)
    assert np.abs(np.bincount(g[:, j], minlength=3) / len(g) - want).max() < 0.03


def test_pruned_cached_ve_plans_match_junction_tree():
    """Component pruning, the global order and cached plans give the junction tree's answers."""
    bn = read_bif("alarm")
    jt = JunctionTree(bn)
    x = bn.sample(40, generator=3)
    rng = np.random.default_rng(1)
    for r in range(40):
        vs = rng.choice(len(bn.variables_), 5, replace=False)
        ev = {bn.variables_[v]: bn.states_[v][x[r, v]] for v in vs[1:]}
        q = bn.variables_[vs[0]]
        for _ in range(2):  # the second call runs the cached plan
            assert np.allclose(query(bn, q, ev), jt.query_batch([q], [ev])[0], atol=1e-9)
    plans = bn._cache["ve_plans"]
    assert 0 < len(plans) <= 40
    two = query(bn, ["HR", "CO"], {"BP": "LOW"})
    assert two.shape == (3, 3) and abs(two.sum() - 1) < 1e-12


def _greedy_order_reference(scopes, eliminate, card, heuristic):
    """A plain set-based greedy elimination (Koller & Friedman 9.4.3), ties on the id."""
    adj = {}
    for s in scopes:
        for v in s:
            adj.setdefault(v, set()).update(u for u in s if u != v)
    for v in eliminate:
        adj.setdefault(v, set())
    todo, order = set(eliminate), []

    def cost(v):
        nb = sorted(adj[v])
        if heuristic == "min_size":
            return len(nb)
        if heuristic == "min_weight":
            return int(np.prod([int(card[u]) for u in nb])) if nb else 0
        return sum(1 for a, b in itertools.combinations(nb, 2) if b not in adj[a])

    while todo:
        v = min(todo, key=lambda u: (cost(u), u))
        nb = adj.pop(v)
        for a in nb:
            adj[a].discard(v)
            adj[a].update(nb - {a})
        todo.discard(v)
        order.append(v)
    return order


@pytest.mark.parametrize("heuristic", ["min_fill", "min_size", "min_weight"])
def test_bitset_elimination_orders_equal_the_set_based_greedy(heuristic):
    from genlab.models.pgm.factors import elimination_order

    rng = np.random.default_rng(5)
    for _ in range(100):
        n = int(rng.integers(4, 14))
        card = rng.integers(2, 6, n)
        scopes = [tuple(int(v) for v in rng.choice(n, int(rng.integers(1, 4)), replace=False)) for _ in range(n)]
        elim = [int(v) for v in rng.choice(n, int(rng.integers(1, n)), replace=False)]
        assert elimination_order(scopes, elim, card, heuristic=heuristic) == \
            _greedy_order_reference(scopes, elim, card, heuristic)


def test_an_order_wider_than_asked_stops_early():
    from genlab.models.pgm.factors import elimination_order, induced_width

    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(5, 14))
        scopes = [tuple(int(v) for v in rng.choice(n, int(rng.integers(1, 5)), replace=False)) for _ in range(n)]
        full = elimination_order(scopes, range(n), [2] * n)
        w = induced_width(scopes, full)
        assert elimination_order(scopes, range(n), [2] * n, max_width=w) == full
        if w > 0:
            assert elimination_order(scopes, range(n), [2] * n, max_width=w - 1) is None


def test_large_queries_take_their_own_cheaper_order():
    """A query whose whole-network order is costly re-plans with min-weight; answers hold."""
    from genlab.models.pgm import ve_plan

    bn = read_bif("alarm")
    jt = JunctionTree(bn)
    x = bn.sample(30, generator=4)
    rng = np.random.default_rng(2)
    old = ve_plan.REORDER_COST, ve_plan.REORDER_FIRST_COST
    try:
        ve_plan.REORDER_COST = ve_plan.REORDER_FIRST_COST = 0  # every query tries its own order
        cheaper = 0
        for r in range(30):
            vs = rng.choice(len(bn.variables_), 4, replace=False)
            ev = {bn.variables_[v]: bn.states_[v][x[r, v]] for v in vs[1:]}
            q = bn.variables_[vs[0]]
            assert np.allclose(query(bn, q, ev), jt.query_batch([q], [ev])[0], atol=1e-9)
            plan = next(reversed(bn._cache["ve_plans"].values()))
            assert plan["cost"] <= plan["global_cost"]
            cheaper += plan["cost"] < plan["global_cost"]
        assert cheaper > 0  # some queries did find a cheaper order of their own
    finally:
        ve_plan.REORDER_COST, ve_plan.REORDER_FIRST_COST = old


def test_a_repeated_plan_is_reordered_on_its_second_use():
    """A one-off query keeps the whole-network order; used again, its plan tries its own."""
    from genlab.models.pgm import ve_plan

    bn = read_bif("alarm")
    jt = JunctionTree(bn)
    old = ve_plan.REORDER_COST, ve_plan.REORDER_FIRST_COST
    try:
        ve_plan.REORDER_COST, ve_plan.REORDER_FIRST_COST = 0, 10**18
        ev = {"HR": "HIGH", "BP": "LOW", "SAO2": "NORMAL"}
        first = query(bn, "INTUBATION", ev)
        (plan,) = bn._cache["ve_plans"].values()
        assert not plan["reordered"] and plan["cost"] == plan["global_cost"]
        again = query(bn, "INTUBATION", ev)
        assert plan["reordered"] and plan["cost"] <= plan["global_cost"]
        want = jt.query_batch(["INTUBATION"], [ev])[0]
        assert np.allclose(first, want, atol=1e-12) and np.allclose(again, want, atol=1e-12)
    finally:
        ve_plan.REORDER_COST, ve_plan.REORDER_FIRST_COST = old


def test_query_batch_routes_and_agrees():
    bn = read_bif("alarm")
    x = bn.sample(20, generator=6)
    rng = np.random.default_rng(3)
    qs, evs = [], []
    for r in range(20):
        vs = rng.choice(len(bn.variables_), 4, replace=False)
        evs.append({bn.variables_[v]: bn.states_[v][x[r, v]] for v in vs[1:]})
        qs.append(bn.variables_[vs[0]])
    evs[0] = None  # no evidence is allowed
    ve = bn.query_batch(qs, evs, method="ve")
    jt = bn.query_batch(qs, evs, method="jt")
    auto = bn.query_batch(qs, evs)
    assert bn._small_junction_tree()  # alarm's cliques hold 1,038 entries: the tree
    for a, b, c in zip(ve, jt, auto):
        assert np.allclose(a, b, atol=1e-9) and np.array_equal(b, c)
    with pytest.raises(ValueError, match="evidence sets"):
        bn.query_batch(qs, evs[:3])
    with pytest.raises(ValueError, match="method"):
        bn.query_batch(qs, evs, method="bp")


def test_a_component_wider_than_52_labels_takes_the_general_path():
    """A 70-node chain queried at its end from its start: the pruned component holds 69
    variables, more than einsum's 52 labels, so VE eliminates factor by factor; the answer
    is the product of the transition matrices."""
    from genlab.models.pgm import BayesianNetwork

    rng = np.random.default_rng(0)
    n = 70
    names = [f"x{i}" for i in range(n)]
    mats = [rng.dirichlet(np.ones(3), size=3) for _ in range(n - 1)]
    cpds = {"x0": np.array([0.2, 0.3, 0.5]), **{names[i + 1]: mats[i] for i in range(n - 1)}}
    bn = BayesianNetwork.from_cpds({v: ["a", "b", "c"] for v in names},
                                   {names[i + 1]: [names[i]] for i in range(n - 1)}, cpds)
    got = query(bn, "x69", {"x0": "b"})
    want = np.eye(3)[1]
    for m in mats:
        want = want @ m
    assert not next(reversed(bn._cache["ve_plans"].values()))["local"]
    assert np.allclose(got, want, atol=1e-12)
    # and backwards: p(x0 | x69) by Bayes' rule over the same chain
    back = query(bn, "x0", {"x69": "c"})
    joint = cpds["x0"][:, None] * np.linalg.multi_dot(mats)
    assert np.allclose(back, joint[:, 2] / joint[:, 2].sum(), atol=1e-12)


def test_junction_tree_messages_on_a_forest_agree_with_brute_force():
    """``JunctionTree.query_batch`` sends only the messages a row's evidence changes:
    rows without evidence, with evidence in the other tree of a forest, at the query's own
    clique or far from it all get the brute-force posterior; a row with impossible
    evidence is named in the error."""
    from genlab.models.pgm import BayesianNetwork

    rng = np.random.default_rng(5)
    states = {v: ["0", "1", "2"] if v in "bd" else ["0", "1"] for v in "abcdef"}
    parents = {"b": ["a"], "c": ["b"], "d": ["a", "c"], "f": ["e"]}

    def table(v):
        shape = [len(states[p]) for p in parents.get(v, [])] + [len(states[v])]
        return rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])

    bn = BayesianNetwork.from_cpds(states, parents, {v: table(v) for v in states})
    joint = brute_force_joint(bn)
    jt = JunctionTree(bn)
    rows = [("a", {}), ("d", {}), ("f", {"c": "1"}), ("a", {"f": "0"}), ("c", {"d": "2"}),
            ("a", {"c": "0", "f": "1"}), ("b", {"a": "1", "d": "0"}), ("e", {"f": "1"}),
            ("d", {"a": "0", "e": "1"}), ("c", {"b": "2", "d": "1", "f": "0"})]
    got = jt.query_batch([q for q, _ in rows], [e for _, e in rows])
    for (q, ev), g in zip(rows, got):
        assert np.abs(g - bf_posterior(bn, joint, q, ev)).max() < 1e-12
    zero = BayesianNetwork.from_cpds({"x": ["0", "1"], "y": ["0", "1"]}, {"y": ["x"]},
                                     {"x": np.array([1.0, 0.0]), "y": np.array([[0.5, 0.5], [0.5, 0.5]])})
    with pytest.raises(ValueError, match="evidence set 1"):
        JunctionTree(zero).query_batch(["y", "y"], [{}, {"x": "1"}])
    from genlab.models.pgm import junction

    old, junction.MAX_ENTRIES = junction.MAX_ENTRIES, 2  # one row per chunk: the index is the batch's
    try:
        with pytest.raises(ValueError, match="evidence set 2"):
            JunctionTree(zero).query_batch(["y"] * 3, [{}, {"x": "0"}, {"x": "1"}])
    finally:
        junction.MAX_ENTRIES = old


def test_elimination_cliques_of_a_four_cycle():
    from genlab.models.pgm.factors import elimination_cliques

    square = [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert elimination_cliques(square, [0, 1, 2, 3]) == [(0, 1, 3), (1, 2, 3)]
    assert elimination_cliques([(0, 1), (1, 2)], [0, 1, 2]) == [(0, 1), (1, 2)]


def test_ve_plans_label_small_networks_by_order_rank_and_renumber_large_ones():
    """Networks of at most 52 variables plan on their tables' ids (labels are ranks in the
    whole-network order); larger ones renumber each component's variables; both give the
    junction tree's answers."""
    from genlab.models.pgm import BayesianNetwork

    bn = read_bif("alarm")
    jt = JunctionTree(bn)
    ev = {"HR": "HIGH", "BP": "LOW"}
    assert np.allclose(query(bn, "INTUBATION", ev), jt.query_batch(["INTUBATION"], [ev])[0], atol=1e-9)
    assert next(reversed(bn._cache["ve_plans"].values()))["ids"] is None
    rng = np.random.default_rng(1)
    names = [f"x{i}" for i in range(60)]
    mats = [rng.dirichlet(np.ones(2), size=2) for _ in range(59)]
    chain = BayesianNetwork.from_cpds({v: ["a", "b"] for v in names},
                                      {names[i + 1]: [names[i]] for i in range(59)},
                                      {"x0": np.array([0.4, 0.6]), **{names[i + 1]: mats[i] for i in range(59)}})
    got = query(chain, "x12", {"x10": "b"})
    plan = next(reversed(chain._cache["ve_plans"].values()))
    assert plan["ids"] is not None and plan["local"]
    assert np.allclose(got, np.eye(2)[1] @ mats[10] @ mats[11], atol=1e-12)


@pytest.mark.parametrize("n", [25, 45])
def test_evidence_too_improbable_for_doubles_still_gives_the_posterior(n):
    """x0 -> h_i -> y_i with every y_i observed at a value of probability ~1e-15: the
    unscaled product of the messages underflows (1e-375 and beyond), so the query reruns
    its plan rescaling every step; the answer matches a log-space sum. n = 25 plans on
    ranks (51 variables), n = 45 on a renumbered component (91 variables)."""
    from genlab.models.pgm import BayesianNetwork

    rng = np.random.default_rng(3)
    states, parents = {"x0": ["a", "b"]}, {}
    cpds = {"x0": np.array([0.3, 0.7])}
    logpost = np.log(cpds["x0"])
    for i in range(n):
        h, y = f"h{i}", f"y{i}"
        states[h] = states[y] = ["a", "b"]
        parents[h], parents[y] = ["x0"], [h]
        cpds[h] = rng.dirichlet(np.ones(2), size=2)
        tiny = rng.uniform(1e-15, 3e-15, size=2)
        cpds[y] = np.stack([1 - tiny, tiny], axis=1)
        logpost += np.log(cpds[h] @ tiny)  # the message from h_i and y_i = "b"
    bn = BayesianNetwork.from_cpds(states, parents, cpds)
    got = query(bn, "x0", {f"y{i}": "b" for i in range(n)})
    want = np.exp(logpost - logpost.max())
    assert np.allclose(got, want / want.sum(), rtol=1e-9, atol=1e-12)
    assert (next(reversed(bn._cache["ve_plans"].values()))["ids"] is None) == (n == 25)


def test_deferred_buckets_keep_the_answers():
    """A plan that puts off labels whose buckets would be large (DEFER_ENTRIES) orders
    its steps differently and answers the same."""
    from genlab.models.pgm import ve_plan

    bn = read_bif("alarm")
    x = bn.sample(30, generator=8)
    rng = np.random.default_rng(4)
    qs = []
    for r in range(30):
        vs = rng.choice(len(bn.variables_), 4, replace=False)
        qs.append((bn.variables_[vs[0]], {bn.variables_[v]: bn.states_[v][x[r, v]] for v in vs[1:]}))
    old = ve_plan.DEFER_ENTRIES
    try:
        runs = []
        for limit in (10**9, 8):
            ve_plan.DEFER_ENTRIES = limit
            bn._cache.pop("ve_plans", None)
            answers = [query(bn, q, e) for q, e in qs]
            runs.append((answers, [p["steps"] for p in bn._cache["ve_plans"].values()]))
    finally:
        ve_plan.DEFER_ENTRIES = old
    (plain, plain_steps), (deferred, deferred_steps) = runs
    assert plain_steps != deferred_steps  # some plan did put a label off
    for a, b in zip(plain, deferred):
        assert np.allclose(a, b, atol=1e-12)


def test_query_batch_auto_leaves_wide_trees_to_variable_elimination():
    """A child of four five-state parents makes a 3,125-entry clique: ``auto`` answers by
    VE without building the junction tree, and the tree (asked for) agrees."""
    from genlab.models.pgm import BayesianNetwork, bayesnet

    rng = np.random.default_rng(2)
    five = ["s0", "s1", "s2", "s3", "s4"]
    states = {v: five for v in "abcde"}
    parents = {"e": ["a", "b", "c", "d"]}
    cpds = {v: rng.dirichlet(np.ones(5)) for v in "abcd"}
    cpds["e"] = rng.dirichlet(np.ones(5), size=(5, 5, 5, 5))
    bn = BayesianNetwork.from_cpds(states, parents, cpds)
    qs, evs = ["a", "b", "e"], [{"e": "s1"}, {"e": "s2", "a": "s0"}, {"c": "s4"}]
    assert 5 ** 5 > bayesnet.JT_AUTO_MAX_CLIQUE
    auto = bn.query_batch(qs, evs)
    assert not bn._small_junction_tree() and "junction_tree" not in bn._cache
    jt = bn.query_batch(qs, evs, method="jt")
    for a, b, (q, e) in zip(auto, jt, zip(qs, evs)):
        assert np.allclose(a, b, atol=1e-12) and np.allclose(a, query(bn, q, e), atol=1e-15)
