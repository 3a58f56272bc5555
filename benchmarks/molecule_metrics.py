"""MOSES metrics of 10,000 molecules: genlab against the MOSES reference code, and the
"Train" row of the MOSES paper.

Input: a seeded sample of ``--n`` (10,000) SMILES of the MOSES *train* split, scored
against MOSES's test and scaffold-test sets with the statistics molsets ships, novelty
against the full training set. The same list goes to

* genlab ``moses_metrics(gen, n_jobs=N)`` (reference statistics from its cache, built
  on first use: the cold-cache cost is printed when this run builds it);
* MOSES's own ``moses.get_all_metrics(gen, n_jobs=N)`` (molsets 0.3.1), in a child
  process with four shims for today's libraries (``rdkit.six``, ``DataFrame.append``,
  ``np.NaN``, ``np.row_stack``) — never imported by genlab itself.

Both times include loading the reference statistics and the training set. Because the
sample *is* training data, the scores should reproduce MOSES's published Train row
(computed on a larger sample: FCD falls with sample size, so 0.008 at 30k is not expected
at 10k).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/molecule_metrics.py
    python benchmarks/molecule_metrics.py --smoke     # 40 molecules against 60-molecule references

``--smoke`` gives both implementations the same small reference lists (the first 60 test
and scaffold-test SMILES, 500 training SMILES) instead of MOSES's statistics, so no cache
is built. Without molsets (its data and MOSES's code) or RDKit it is skipped.
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# MOSES's README table (molecularsets/moses), row "Train"
PUBLISHED_TRAIN = {
    "valid": 1.0, "unique@1000": 1.0, "unique@10000": 1.0, "FCD/Test": 0.008,
    "FCD/TestSF": 0.4755, "SNN/Test": 0.6419, "SNN/TestSF": 0.5859, "Frag/Test": 1.0,
    "Frag/TestSF": 0.9986, "Scaf/Test": 0.9907, "Scaf/TestSF": 0.0, "IntDiv": 0.8567,
    "IntDiv2": 0.8508, "Filters": 1.0, "Novelty": 1.0,
}


def sample(n: int, seed: int) -> list[str]:
    import numpy as np
    from genlab.data.molecules import moses_smiles

    train = moses_smiles("train")
    return [train[i] for i in np.random.default_rng(seed).choice(len(train), n, replace=False)]


def moses_child(gen_path: str, out_path: str, n_jobs: int, refs_path: str | None = None) -> None:
    """Runs in a separate process: MOSES's reference implementation with shims."""
    import types

    import numpy as np
    import pandas as pd

    six = types.ModuleType("rdkit.six")
    six.iteritems = lambda d: iter(d.items())
    sys.modules["rdkit.six"] = six
    if not hasattr(pd.DataFrame, "append"):
        pd.DataFrame.append = lambda self, other, sort=False: pd.concat([self, other], sort=sort)
    if not hasattr(np, "NaN"):
        np.NaN = np.nan
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack
    warnings.simplefilter("ignore")
    import moses

    gen = open(gen_path).read().split("\n")
    refs = json.load(open(refs_path)) if refs_path else {}
    t = time.perf_counter()
    res = moses.get_all_metrics(gen, n_jobs=n_jobs, **refs)
    seconds = time.perf_counter() - t
    with open(out_path, "w") as f:
        json.dump({"seconds": seconds, "metrics": {k: float(v) for k, v in res.items()},
                   "version": moses.__version__}, f)


def run_moses(gen: list[str], n_jobs: int, refs: dict | None = None, in_process: bool = False) -> dict:
    """MOSES's metrics of ``gen`` (``refs``: reference lists instead of its statistics), in
    a child process — or, for a smoke run, in this one (its shims then patch this process)."""
    with tempfile.TemporaryDirectory() as tmp:
        gen_path, out_path = os.path.join(tmp, "gen.smi"), os.path.join(tmp, "out.json")
        with open(gen_path, "w") as f:
            f.write("\n".join(gen))
        extra = []
        if refs:
            extra = ["--moses-refs", os.path.join(tmp, "refs.json")]
            with open(extra[1], "w") as f:
                json.dump(refs, f)
        if in_process:
            moses_child(gen_path, out_path, n_jobs, extra[1] if extra else None)
        else:
            subprocess.run([sys.executable, __file__, "--moses-child", gen_path, out_path,
                            "--n-jobs", str(n_jobs), *extra], check=True)
        with open(out_path) as f:
            return json.load(f)


def warm_caches(n_jobs: int) -> dict[str, float]:
    """Builds genlab's reference caches if missing; returns the seconds spent per cache."""
    from genlab.metrics import _mol_reference as MR

    built = {}
    for name, fn in (("test", lambda: MR.moses_reference("test", n_jobs=n_jobs)),
                     ("test_scaffolds", lambda: MR.moses_reference("test_scaffolds", n_jobs=n_jobs)),
                     ("train", lambda: MR.moses_train(n_jobs=n_jobs))):
        stem = "train" if name == "train" else name
        path = MR.cache_dir() / f"{stem}-rdkit{MR._rdkit_version()}-v{MR.FORMAT}.npz"
        if not path.is_file():
            t = time.perf_counter()
            fn()
            built[name] = time.perf_counter() - t
    return built


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="molecules sampled from MOSES train")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--skip-moses", action="store_true", help="genlab only")
    ap.add_argument("--out", default="benchmarks/out/molecule_metrics.json")
    ap.add_argument("--moses-child", nargs=2, metavar=("GEN", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--moses-refs", help=argparse.SUPPRESS)
    _common.add_smoke(ap)
    args = ap.parse_args()
    if args.moses_child:
        return moses_child(*args.moses_child, args.n_jobs, args.moses_refs)
    smoke = _common.start_smoke(args)
    refs = {}
    if smoke:
        args.n, args.n_jobs = 40, 1
        refs = _common.smoke_moses_references()  # molsets' data and code come together

    import torch

    from genlab.metrics.molecules import moses_metrics

    gen = sample(args.n, args.seed)
    cold = {} if smoke else warm_caches(args.n_jobs)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = moses_metrics(gen, n_jobs=args.n_jobs, progress=False, **refs)
    t_ours = time.perf_counter() - t
    ref = None if args.skip_moses else run_moses(gen, args.n_jobs, {**refs, "k": list(refs["k"])} if refs else None,
                                                 in_process=smoke)

    print(f"MOSES metrics of {args.n} MOSES-train SMILES (seed {args.seed}) vs test / test "
          f"scaffolds; n_jobs={args.n_jobs}, {torch.get_num_threads()} torch threads")
    print(f"{'metric':<14} {'genlab':>10} {'MOSES code':>11} {'|diff|':>9} {'published Train':>16}")
    rows = []
    for key in ours:
        m = None if ref is None else ref["metrics"].get(key)
        pub = PUBLISHED_TRAIN.get(key)
        diff = None if m is None else abs(ours[key] - m)
        fmt = lambda v, w, p=4: f"{v:>{w}.{p}f}" if v is not None and not math.isnan(v) else f"{'—':>{w}}"  # noqa: E731
        print(f"{key:<14} {fmt(ours[key], 10)} {fmt(m, 11)} {fmt(diff, 9, 6)} {fmt(pub, 16)}")
        rows.append({"metric": key, "genlab": ours[key], "moses": m, "abs_diff": diff, "published_train": pub})
    print(f"{'seconds':<14} {t_ours:>10.1f} {ref['seconds'] if ref else float('nan'):>11.1f}"
          + (f"   MOSES time / genlab time = {ref['seconds'] / t_ours:.2f}" if ref else ""))
    _common.ratio("speed (runs/s)", 1 / t_ours, ref and 1 / ref["seconds"], "MOSES code",
                  "" if ref else "MOSES code not run")
    if ref:
        worst = max((r["abs_diff"] for r in rows if r["abs_diff"] is not None and not math.isnan(r["abs_diff"])),
                    default=float("nan"))
        print(f"largest |genlab - MOSES| over the metrics: {worst:.2e}")
    if cold:
        print("genlab cache built in this run (one-time): "
              + ", ".join(f"{k} {v:.0f} s" for k, v in cold.items()))
    _common.save({"benchmark": "molecule_metrics", "n": args.n, "seed": args.seed,
                  "n_jobs": args.n_jobs, "genlab_seconds": t_ours,
                  "moses_seconds": ref["seconds"] if ref else None,
                  "moses_version": ref["version"] if ref else None,
                  "cold_cache_seconds": cold, "results": rows}, args.out)


if __name__ == "__main__":
    main()
