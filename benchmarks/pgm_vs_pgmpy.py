"""genlab Bayesian networks vs pgmpy 1.1.x, side by side, same networks and data, 1 thread.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/pgm_vs_pgmpy.py --part main \
        --networks alarm insurance child --out benchmarks/pgm_main.json
    OMP_WAIT_POLICY=PASSIVE python benchmarks/pgm_vs_pgmpy.py --part scaling \
        --networks hailfinder win95pts andes pigs link --out benchmarks/pgm_scaling.json

Each network runs in its own subprocess (clean peak-memory numbers), with
``PYTHONHASHSEED`` fixed (``--hash-seed``, default 0: pgmpy's junction tree depends on set
order) and pgmpy's belief propagation allowed ``--pgmpy-mem-gb`` more memory (default 6 GiB;
beyond that the row says it ran out of memory instead of the machine killing the process). Networks are read
from pgmpy's package data (``pgmpy/utils/example_models/*.bif.gz``). Where a pgmpy
operation would take minutes it is timed on a fraction of the work and scaled up; such
rows are marked ``extrapolated``. In the main part each timing is the best of ``--repeats``
runs (default 3) for both libraries (genlab's VE repeats start without cached query
plans); ``--only sample ve`` times only those pgmpy parts. Requires ``pip install 'pgmpy<1.3'``.

    python benchmarks/pgm_vs_pgmpy.py --smoke     # asia, 2,000 rows, 5 queries, one repeat

Without pgmpy, genlab's side runs alone on the networks genlab ships (asia, alarm, ...).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import time

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import _common  # noqa: E402


REPS = 3
# work sizes: rows sampled, queries, junction-tree queries, hill-climbing rows (--smoke: tiny)
SIZES = {"sample": 100_000, "queries": 100, "jt": 1000, "hc": 10_000}
SMOKE_SIZES = {"sample": 2000, "queries": 5, "jt": 20, "hc": 500}


def have_pgmpy() -> bool:
    return _common.have("pgmpy")


def network_path(name: str) -> str:
    """pgmpy's copy of network ``name``; without pgmpy, the name of the copy genlab ships."""
    import importlib.util

    if not _common.have("pgmpy"):
        return name  # read_bif resolves the networks shipped with genlab
    spec = importlib.util.find_spec("pgmpy")
    return os.path.join(os.path.dirname(spec.origin), "utils", "example_models", f"{name}.bif.gz")


@contextlib.contextmanager
def paused_gc():
    """Collect, then keep the cyclic garbage collector off while timing (timeit's rule): a
    full collection of a large heap costs 50-100 ms and would land in whichever short loop
    happens to run then. Used for both libraries; loops capped at tens of seconds keep it
    on (their garbage would pile up, and their pauses average out). Smoke runs skip the
    collection (0.1 s each after importing torch and pgmpy)."""
    if not _common.SMOKE:
        gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@contextlib.contextmanager
def memory_capped(extra_gb: float):
    """Let this process grow by at most ``extra_gb`` GiB of address space inside the block,
    so a library that would take the machine's memory raises ``MemoryError`` instead (pgmpy's
    belief propagation on insurance builds junction-tree factors of over 20 GB)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = vm + int(extra_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def timed(fn, *a, **k):
    with paused_gc():
        t = time.perf_counter()
        out = fn(*a, **k)
        return time.perf_counter() - t, out


def best_of(reps, fn, setup=None):
    """The fastest of ``reps`` timed runs (timeit's rule: the others measure the noise
    of a shared machine); ``setup`` runs untimed before each."""
    best, out = float("inf"), None
    for _ in range(reps):
        if setup is not None:
            setup()
        t, out = timed(fn)
        best = min(best, t)
    return best, out


def run_one(name: str, part: str, pgmpy_cap_s: float, only: tuple = (), pgmpy_mem_gb: float = 6.0) -> dict:
    def want(op: str) -> bool:
        return not only or op in only

    import gzip
    import resource
    import warnings

    import numpy as np
    import pandas as pd

    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)
    from genlab.models.pgm import read_bif
    from genlab.models.pgm.junction import JunctionTree
    from genlab.models.pgm.learning import fit_parameters
    from genlab.models.pgm.structure import Scorer, hill_climb, structural_hamming_distance

    path = network_path(name)
    res: dict = {"network": name, "python_hash_seed": os.environ.get("PYTHONHASHSEED")}
    t_load, bn = timed(read_bif, path, atol=1e-5)
    res["nodes"], res["edges"] = len(bn.variables_), len(bn.edges())
    res["genlab_load_s"] = t_load
    d = len(bn.variables_)
    n_sample = SIZES["sample"]
    reps = REPS if part == "main" else 1
    res["repeats"] = reps
    res["genlab_sample_s"], x = best_of(reps, lambda: bn.sample(n_sample, generator=0))
    x = x.numpy()  # sample gives an int64 tensor sharing numpy's memory; the helpers below take arrays
    res["genlab_loglik_s"], lp = timed(bn.log_prob, x)
    fresh = read_bif(path, atol=1e-5)
    res["genlab_fit_s"], _ = timed(fit_parameters, fresh, x)
    res["genlab_jt_build_s"], jt = timed(JunctionTree, bn)
    res["treewidth"] = jt.treewidth
    res["jt_entries"] = sum(int(np.prod([bn.cardinalities[v] for v in c])) for c in jt.cliques)
    rng = np.random.default_rng(0)
    queries = []
    for r in range(SIZES["queries"] if part == "main" else 20):
        row = x[r]
        vs = rng.choice(d, 4, replace=False)
        ev = {bn.variables_[v]: bn.states_[v][row[v]] for v in vs[1:]}
        queries.append((bn.variables_[vs[0]], ev))
    res["n_queries"] = len(queries)
    # fresh query plans each repeat: every query pays its planning, as a first query does
    res["genlab_ve_queries_s"], ve_ans = best_of(reps, lambda: [bn.query(q, e) for q, e in queries],
                                                 setup=lambda: bn._cache.pop("ve_plans", None))
    # the same query patterns (query and evidence variables) with other evidence values:
    # cached plans, as a program asking one question of many cases sees them
    queries2 = []
    for r, (q, e) in enumerate(queries):
        row = x[len(queries) + r]
        queries2.append((q, {k: bn.states_[bn.index(k)][row[bn.index(k)]] for k in e}))
    res["genlab_ve_repeat_s"], ve2_ans = best_of(reps, lambda: [bn.query(q, e) for q, e in queries2])
    # query_batch(method="auto"): the junction tree when its cliques are small, else VE
    def clear():
        bn._cache.pop("ve_plans", None)
        bn._cache.pop("junction_tree", None)

    res["genlab_batch_s"], b_ans = best_of(reps, lambda: bn.query_batch([q for q, _ in queries], [e for _, e in queries]),
                                           setup=clear)
    res["batch_method"] = "jt" if "junction_tree" in bn._cache and bn._small_junction_tree() else "ve"
    res["ve_vs_batch_maxdiff"] = float(max(np.abs(a - b).max() for a, b in zip(ve_ans, b_ans)))
    # 1,000 junction-tree queries, where one calibration pass is affordable (link's cliques
    # hold 38M entries per evidence set: 1,000 of them would take hours; VE answers those)
    if res["jt_entries"] * 1000 <= 2e9:
        res["genlab_jt_queries_s"], jt_ans = timed(jt.query_batch, [q for q, _ in queries], [e for _, e in queries])
        res["ve_vs_jt_maxdiff"] = float(max(np.abs(a - b).max() for a, b in zip(ve_ans, jt_ans)))
        q1000 = [queries[i % len(queries)] for i in range(SIZES["jt"])]
        res["genlab_jt_1000_s"], _ = timed(jt.query_batch, [q for q, _ in q1000], [e for _, e in q1000])
        res["genlab_jt_1000_s"] *= 1000 / SIZES["jt"]  # per 1000 queries

    # ---------------- pgmpy
    if not have_pgmpy():
        res["pgmpy"] = "not installed"
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return res
    from pgmpy.estimators import HillClimbSearch, MaximumLikelihoodEstimator
    from pgmpy.inference import BeliefPropagation, VariableElimination
    from pgmpy.models import DiscreteBayesianNetwork
    from pgmpy.readwrite import BIFReader
    from pgmpy.sampling import BayesianModelSampling

    text = gzip.open(path, "rt").read()
    res["pgmpy_load_s"], pm = timed(lambda: BIFReader(string=text).get_model())
    labels = [np.array(s, dtype=object) for s in bn.states_]

    def frame(codes):
        return pd.DataFrame({v: labels[j][codes[:, j]] for j, v in enumerate(bn.variables_)})

    n_pg = n_sample if part == "main" else min(n_sample, 10_000)
    if want("sample"):
        t, _ = best_of(reps, lambda: BayesianModelSampling(pm).forward_sample(size=n_pg, seed=0, show_progress=False, n_jobs=1))
        res["pgmpy_sample_s"] = t * n_sample / n_pg
        res["pgmpy_sample_extrapolated"] = n_pg != n_sample
    ve = VariableElimination(pm)

    def pgmpy_queries(qs, answers):
        """pgmpy's best time for ``qs`` (extrapolated past the cap), whether it was
        extrapolated, and its largest difference from genlab's ``answers``."""
        err, best, extra = 0.0, float("inf"), False
        for _ in range(reps if want("ve") else 0):
            theirs = []
            with paused_gc():
                done, t0 = 0, time.perf_counter()
                for q, e in qs:
                    theirs.append(ve.query([q], evidence=e, show_progress=False))
                    done += 1
                    if time.perf_counter() - t0 > pgmpy_cap_s:
                        break
                best = min(best, (time.perf_counter() - t0) * len(qs) / done)
            extra = done != len(qs)
            for (q, _), f, mine in zip(qs, theirs, answers):
                st = f.state_names[q]
                err = max(err, float(np.abs(np.array([f.values[st.index(s)] for s in bn.states_[bn.index(q)]]) - mine).max()))
        return best, extra, err

    best, res["pgmpy_ve_extrapolated"], err = pgmpy_queries(queries, ve_ans)
    if best < float("inf"):
        res["pgmpy_ve_queries_s"] = best
    best2, _, err2 = pgmpy_queries(queries2, ve2_ans)
    if best2 < float("inf"):
        res["pgmpy_ve_repeat_s"] = best2
    err = max(err, err2)
    res["pgmpy_vs_genlab_maxdiff"] = err
    if part == "main" and not only:
        bp = BeliefPropagation(pm)  # capped loops of up to 30 s keep the collector on
        done, t0 = 0, time.perf_counter()
        try:
            with memory_capped(pgmpy_mem_gb):
                for q, e in q1000:
                    bp.query([q], evidence=e, show_progress=False)
                    done += 1
                    if time.perf_counter() - t0 > pgmpy_cap_s:
                        break
            res["pgmpy_jt_1000_s"] = (time.perf_counter() - t0) * 1000 / done
            res["pgmpy_jt_extrapolated"] = done != 1000
        except MemoryError:
            res["pgmpy_jt_note"] = (f"pgmpy BeliefPropagation ran out of memory (capped at {pgmpy_mem_gb:g} GiB "
                                    f"more) after {done} queries, {time.perf_counter() - t0:.1f} s")
        del bp
        gc.collect()
        df = frame(x)
        model = DiscreteBayesianNetwork(pm.edges())
        model.add_nodes_from(bn.variables_)
        sn = {v: list(s) for v, s in zip(bn.variables_, bn.states_)}
        res["pgmpy_fit_s"], _ = timed(lambda: MaximumLikelihoodEstimator(model, df, state_names=sn).get_parameters(n_jobs=1))
        t0, done = time.perf_counter(), 0
        for r in df.head(SIZES["jt"]).to_dict("records"):
            pm.get_state_probability(r)
            done += 1
            if time.perf_counter() - t0 > pgmpy_cap_s:
                break
        res["pgmpy_loglik_s"] = (time.perf_counter() - t0) * n_sample / done
        res["pgmpy_loglik_note"] = "no per-row log-likelihood in pgmpy 1.1; get_state_probability per row, extrapolated"
        # hill climbing with BIC on 10,000 rows
        x10 = x[:SIZES["hc"]]
        sc = Scorer(x10, bn.cardinalities, "bic")
        res["genlab_hc_s"], ps = timed(hill_climb, x10, bn.cardinalities, score="bic")
        true_edges = set(bn.edges())
        mine = {(bn.variables_[p], bn.variables_[v]) for v in range(d) for p in ps[v]}
        res["genlab_hc_bic"] = sc.total(ps)
        res["genlab_hc_shd"] = structural_hamming_distance(mine, true_edges)
        res["true_dag_bic"] = sc.total(bn.parents_)
        res["pgmpy_hc_s"], dag = timed(lambda: HillClimbSearch(frame(x10)).estimate(scoring_method="bic-d", show_progress=False))
        theirs = set(dag.edges())
        pos = {v: i for i, v in enumerate(bn.variables_)}
        pparents = [[pos[u] for (u, w) in theirs if w == v] for v in bn.variables_]
        res["pgmpy_hc_bic"] = sc.total(pparents)
        res["pgmpy_hc_shd"] = structural_hamming_distance(theirs, true_edges)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def table(rows: list[dict], part: str) -> str:
    def r(a, b):
        return f"{a / b:,.0f}x" if b > 0 else "-"

    out = []
    if part == "main":
        out.append("| network | op | pgmpy s | genlab s | ratio |")
        out.append("|---|---|---:|---:|---:|")
        for x in rows:
            n = x["network"]
            for op, pk, gk in [("BIF load", "pgmpy_load_s", "genlab_load_s"),
                               ("forward sample 100k", "pgmpy_sample_s", "genlab_sample_s"),
                               (f"{x['n_queries']} VE queries (genlab VE)", "pgmpy_ve_queries_s", "genlab_ve_queries_s"),
                               (f"{x['n_queries']} VE queries, patterns seen before (new values)",
                                "pgmpy_ve_repeat_s", "genlab_ve_repeat_s"),
                               (f"{x['n_queries']} queries (genlab batched JT)", "pgmpy_ve_queries_s", "genlab_jt_queries_s"),
                               (f"{x['n_queries']} queries (genlab query_batch auto: {x.get('batch_method')})",
                                "pgmpy_ve_queries_s", "genlab_batch_s"),
                               ("1000 JT queries", "pgmpy_jt_1000_s", "genlab_jt_1000_s"),
                               ("MLE fit 100k", "pgmpy_fit_s", "genlab_fit_s"),
                               ("hill climb BIC 10k", "pgmpy_hc_s", "genlab_hc_s"),
                               ("log-lik 100k rows", "pgmpy_loglik_s", "genlab_loglik_s")]:
                if pk in x and gk in x:
                    out.append(f"| {n} | {op} | {x[pk]:.3f} | {x[gk]:.4f} | {r(x[pk], x[gk])} |")
                elif pk == "pgmpy_jt_1000_s" and gk in x and "pgmpy_jt_note" in x:
                    out.append(f"| {n} | {op} | out of memory | {x[gk]:.4f} | - |")
            if "pgmpy_hc_bic" in x:
                out.append(f"| {n} | HC BIC (SHD to true) | {x['pgmpy_hc_bic']:.1f} ({x['pgmpy_hc_shd']}) | "
                           f"{x['genlab_hc_bic']:.1f} ({x['genlab_hc_shd']}) | true DAG {x['true_dag_bic']:.1f} |")
    else:
        out.append("| network | nodes | treewidth | load s (pgmpy) | sample 100k s (pgmpy) | 20 queries s (pgmpy) | "
                   "JT 1000 s | fit 100k s | log-lik 100k s | peak MB |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in rows:
            out.append(f"| {x['network']} | {x['nodes']} | {x['treewidth']} | {x['genlab_load_s']:.3f} ({x['pgmpy_load_s']:.1f}) | "
                       f"{x['genlab_sample_s']:.2f} ({x['pgmpy_sample_s']:.1f}) | {x['genlab_ve_queries_s']:.3f} "
                       f"({x['pgmpy_ve_queries_s']:.2f}) | "
                       + (f"{x['genlab_jt_1000_s']:.2f}" if "genlab_jt_1000_s" in x else
                          f"— (cliques {x['jt_entries']:,} entries)") + f" | {x['genlab_fit_s']:.3f} | "
                       f"{x['genlab_loglik_s']:.3f} | {x['peak_rss_mb']:.0f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("main", "scaling"), default="main")
    ap.add_argument("--networks", nargs="+", default=["alarm", "insurance", "child"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--repeats", type=int, default=3, help="main part: best of this many runs per timing")
    ap.add_argument("--pgmpy-cap-s", type=float, default=60.0, help="time cap per pgmpy loop before extrapolating")
    ap.add_argument("--pgmpy-mem-gb", type=float, default=6.0,
                    help="memory pgmpy's belief propagation may add before it counts as out of memory")
    ap.add_argument("--hash-seed", type=int, default=0,
                    help="PYTHONHASHSEED of each network's process: pgmpy's junction tree (its "
                         "elimination order) depends on set order, so its memory and time do too")
    ap.add_argument("--only", nargs="+", default=(), choices=("sample", "ve"),
                    help="time only these pgmpy parts (genlab always runs all)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    _common.add_smoke(ap)
    a = ap.parse_args()
    global REPS
    if _common.start_smoke(a):
        a.part, a.networks, a.repeats, a.pgmpy_cap_s = "main", ["asia"], 1, 0.3
        SIZES.update(SMOKE_SIZES)
    REPS = a.repeats
    if a.one:
        print(json.dumps(run_one(a.one, a.part, a.pgmpy_cap_s, tuple(a.only), a.pgmpy_mem_gb)))
        return
    rows = []
    for n in a.networks:
        if a.smoke:  # in this process: a smoke run reports no peak memory
            rows.append(run_one(n, a.part, a.pgmpy_cap_s, tuple(a.only), a.pgmpy_mem_gb))
            print(json.dumps(rows[-1]), flush=True)
            continue
        p = subprocess.run([sys.executable, __file__, "--one", n, "--part", a.part,
                            "--pgmpy-cap-s", str(a.pgmpy_cap_s), "--pgmpy-mem-gb", str(a.pgmpy_mem_gb),
                            "--repeats", str(a.repeats), *(["--only", *a.only] if a.only else [])],
                           capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": str(a.hash_seed)})
        if p.returncode:
            print(f"{n} failed:\n{p.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows, a.part))
    if not have_pgmpy():
        print("note: pgmpy is not installed (pip install 'pgmpy<1.3'): genlab's side only")
    for x in rows:  # speeds: pgmpy time / genlab time
        for op in ("load", "sample", "ve_queries", "jt_1000", "fit", "hc", "loglik"):
            if f"genlab_{op}_s" in x:
                p = x.get(f"pgmpy_{op}_s")
                why = ("pgmpy not installed" if not have_pgmpy() else
                       x["pgmpy_jt_note"] if op == "jt_1000" and "pgmpy_jt_note" in x else "not timed")
                _common.ratio(f"{x['network']} {op} runs/s", 1 / x[f"genlab_{op}_s"], p and 1 / p, "pgmpy",
                              "" if p else why)
    if a.out:
        out = _common.out_path(a.out)
        with open(out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
