"""Exact answers against pgmpy on every Bayesian network pgmpy ships (issue 6: "every
marginal and MAP answer equals pgmpy's to 1e-9, or 1e-6 where a shipped table itself
sums to one only within 1e-7").

Per network: evidence sets drawn from genlab's forward samples (so of probability > 0),
each with one query variable, answered by genlab's variable elimination, its
``query_batch`` and pgmpy's ``VariableElimination.query``; MAP queries of three free
variables compared by the posterior probability of genlab's and pgmpy's assignments
(ties may pick different assignments of equal probability) — pgmpy's MAP being the argmax
of its exact joint posterior of the three, whose every entry is compared too (pgmpy's own
``map_query`` ran out of memory on mildew and barley, asking for 102 GiB, and had not
finished one query on andes after five minutes). Each network runs in its own
process under a wall-clock cap (pgmpy's query time grows steeply on the large networks);
the answers compared before the cap are kept and the table says how many.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python benchmarks/pgm_agreement.py
    python benchmarks/pgm_agreement.py --networks asia alarm --queries 10

Prints a table; writes benchmarks/out/pgm_agreement.json.

    python benchmarks/pgm_agreement.py --smoke     # asia, 3 marginals, 1 MAP query

Without pgmpy only genlab's side runs (VE against ``query_batch``, on the networks genlab
ships).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import _common

NETWORKS = ["asia", "cancer", "earthquake", "survey", "sachs", "child", "insurance", "alarm",
            "water", "mildew", "barley", "hailfinder", "hepar2", "win95pts", "pathfinder",
            "andes", "munin", "diabetes", "pigs", "link"]


def network_path(name: str) -> str:
    """pgmpy's copy of network ``name``; without pgmpy, the name of the copy genlab ships."""
    import importlib.util

    if not _common.have("pgmpy"):
        return name  # read_bif resolves the networks shipped with genlab
    spec = importlib.util.find_spec("pgmpy")
    return os.path.join(os.path.dirname(spec.origin), "utils", "example_models", f"{name}.bif.gz")


def run_network(name: str, n_queries: int, n_map: int, cap_s: float, out_path: str,
                limit_memory: bool = True) -> None:
    """Answer and compare one network's queries; one JSON line per compared query, so a
    run stopped at the cap keeps what it had. ``limit_memory``: cap this process's address
    space at 16 GiB (it runs in a process of its own)."""
    import gzip
    import logging
    import warnings

    import numpy as np

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from genlab.models.pgm import read_bif
    from genlab.models.pgm.inference import map_query, query

    # a pgmpy query that multiplies too much fails with MemoryError instead of the OOM killer
    if limit_memory:
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, resource.RLIM_INFINITY))
    path = network_path(name)
    bn = read_bif(path, atol=1e-5)
    dev = max(float(np.abs(t.sum(-1) - 1).max()) for t in bn.cpds_)
    tol = 1e-9 if dev < 1e-12 else 1e-6
    out = open(out_path, "w")

    def emit(rec: dict) -> None:
        out.write(json.dumps(rec) + "\n")
        out.flush()

    emit({"kind": "network", "nodes": len(bn.variables_), "table_sum_dev": dev, "tol": tol})
    try:
        from pgmpy.inference import VariableElimination
        from pgmpy.readwrite import BIFReader
    except ImportError:  # genlab's side only: VE against query_batch
        ve = None
    else:
        ve = VariableElimination(BIFReader(string=gzip.open(path, "rt").read()).get_model())
    d = len(bn.variables_)
    rng = np.random.default_rng(0)
    rows = bn.sample(n_queries + n_map, generator=1).numpy()
    queries = []
    for r in range(n_queries + n_map):
        vs = rng.choice(d, 4, replace=False)
        queries.append((bn.variables_[vs[0]], {bn.variables_[v]: bn.states_[v][rows[r, v]] for v in vs[1:]}))
    batch = bn.query_batch([q for q, _ in queries[:n_queries]], [e for _, e in queries[:n_queries]])
    t0 = time.perf_counter()
    for (q, ev), b in zip(queries[:n_queries], batch):
        if time.perf_counter() - t0 > cap_s:
            break
        mine = query(bn, q, ev)
        diff = None
        if ve is not None:
            f = ve.query([q], evidence=ev, show_progress=False)
            theirs = np.array([f.values[f.state_names[q].index(s)] for s in bn.states_[bn.index(q)]])
            diff = float(np.abs(mine - theirs).max())
        emit({"kind": "marginal", "diff": diff, "batch_diff": float(np.abs(mine - b).max())})
    for q, ev in queries[n_queries:] if ve is not None else ():
        if time.perf_counter() - t0 > cap_s:
            break
        free = [v for v in rng.permutation(bn.variables_) if v not in ev][:3]
        mine = map_query(bn, free, ev)
        # pgmpy's MAP of ``free``: the argmax of its exact joint posterior (its own
        # map_query multiplies every reduced table at once: 102 GiB on mildew)
        f = ve.query(free, evidence=ev, joint=True, show_progress=False)
        idx = np.unravel_index(int(np.argmax(f.values)), f.values.shape)
        theirs = {v: f.state_names[v][k] for v, k in zip(f.variables, idx)}
        post = query(bn, free, ev)
        table_pg = np.transpose(f.values, [f.variables.index(v) for v in free])
        for ax, v in enumerate(free):  # pgmpy's state order -> genlab's
            table_pg = np.take(table_pg, [f.state_names[v].index(s) for s in bn.states_[bn.index(v)]], axis=ax)
        p = [float(post[tuple(bn.state_index(v, a[v]) for v in free)]) for a in (mine, theirs)]
        emit({"kind": "map", "p_genlab": p[0], "p_pgmpy": p[1], "same": mine == theirs,
              "joint_diff": float(np.abs(post - table_pg).max())})
    out.close()


def summarise(name: str, lines: list[dict], timed_out: bool) -> dict:
    head = next((x for x in lines if x["kind"] == "network"), {})
    marg = [x for x in lines if x["kind"] == "marginal"]
    maps = [x for x in lines if x["kind"] == "map"]
    tol = head.get("tol", 1e-9)
    rec = {"network": name, "nodes": head.get("nodes"), "table_sum_dev": head.get("table_sum_dev"),
           "tol": tol, "marginals": len(marg), "maps": len(maps), "timed_out": timed_out,
           "max_marginal_diff": max((x["diff"] for x in marg if x["diff"] is not None), default=None),
           "max_batch_diff": max((x["batch_diff"] for x in marg), default=None),
           "max_map_prob_diff": max((abs(x["p_genlab"] - x["p_pgmpy"]) for x in maps), default=None),
           "max_joint_diff": max((x["joint_diff"] for x in maps), default=None),
           "map_same_assignment": sum(x["same"] for x in maps)}
    diffs = [v for v in (rec["max_marginal_diff"], rec["max_batch_diff"], rec["max_map_prob_diff"],
                         rec["max_joint_diff"]) if v is not None]
    rec["agree"] = bool(diffs) and max(diffs) < tol
    rec["pgmpy_compared"] = sum(x["diff"] is not None for x in marg) + len(maps)
    rec["pgmpy_agreeing"] = (sum(x["diff"] is not None and x["diff"] < tol for x in marg)
                             + sum(abs(x["p_genlab"] - x["p_pgmpy"]) < tol and x["joint_diff"] < tol
                                   for x in maps))
    return rec


def table(rows: list[dict]) -> str:
    def f(v):
        return "—" if v is None else f"{v:.1e}"

    out = ["| network | nodes | tolerance | marginals compared | max diff vs pgmpy | max diff VE vs query_batch "
           "| MAP queries (same assignment) | max diff of the MAP variables' joint posterior | agree |",
           "|---|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in rows:
        out.append(f"| {r['network']} | {r['nodes']} | {r['tol']:.0e} | {r['marginals']}"
                   f"{' (cap)' if r['timed_out'] else ''} | {f(r['max_marginal_diff'])} | {f(r['max_batch_diff'])} "
                   f"| {r['maps']} ({r['map_same_assignment']}) | {f(r['max_joint_diff'])} | "
                   f"{'yes' if r['agree'] else 'NO'} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", nargs="+", default=NETWORKS)
    ap.add_argument("--queries", type=int, default=20, help="marginal queries per network")
    ap.add_argument("--maps", type=int, default=5, help="MAP queries per network")
    ap.add_argument("--cap-s", type=float, default=120.0, help="wall-clock cap per network")
    ap.add_argument("--out", default="benchmarks/out/pgm_agreement.json")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    _common.add_smoke(ap)
    a = ap.parse_args()
    if _common.start_smoke(a):
        a.networks, a.queries, a.maps, a.cap_s = ["asia"], 3, 1, 30.0
    if a.one:
        run_network(a.one[0], a.queries, a.maps, a.cap_s, a.one[1])
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.networks:
            path = os.path.join(tmp, f"{name}.jsonl")
            cmd = [sys.executable, __file__, "--one", name, path, "--queries", str(a.queries),
                   "--maps", str(a.maps), "--cap-s", str(a.cap_s)]
            t = time.perf_counter()
            timed_out = False
            if a.smoke:  # in this process (asia: nothing to cap)
                run_network(name, a.queries, a.maps, a.cap_s, path, limit_memory=False)
                cmd = []
            try:  # the cap is checked between queries; one endless pgmpy query is cut here
                if cmd:
                    p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.cap_s * 2 + 120)
                    if p.returncode:
                        print(f"{name} failed:\n{p.stderr[-2000:]}", file=sys.stderr)
            except subprocess.TimeoutExpired:
                timed_out = True
            lines = [json.loads(x) for x in open(path)] if os.path.exists(path) else []
            rec = summarise(name, lines, timed_out or time.perf_counter() - t > a.cap_s)
            rec["wall_s"] = round(time.perf_counter() - t, 1)
            rows.append(rec)
            print(json.dumps(rec), flush=True)
    print(table(rows))
    pgmpy = _common.have("pgmpy")
    for r in rows:  # answers within the tolerance of pgmpy's, of those compared
        _common.ratio(f"{r['network']} answers equal to pgmpy's within {r['tol']:.0e}",
                      r["pgmpy_agreeing"] if pgmpy else r["marginals"],
                      r["pgmpy_compared"] if pgmpy else None, "answers compared",
                      "" if pgmpy else f"pgmpy not installed; {r['marginals']} genlab VE answers "
                      f"checked against query_batch, max diff {r['max_batch_diff']}")
    out = _common.out_path(a.out)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump({"queries": a.queries, "maps": a.maps, "cap_s": a.cap_s, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
