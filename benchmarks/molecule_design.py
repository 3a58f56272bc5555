"""Steering a SMILES generator: goal-directed QED optimisation by hill climbing (GuacaMol's
SMILES-LSTM baseline) and property-conditioned generation.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/molecule_design.py climb --rounds 8 --n-samples 2000 --keep 500
    OMP_WAIT_POLICY=PASSIVE python benchmarks/molecule_design.py latent --rounds 10 --n-samples 1000
    OMP_WAIT_POLICY=PASSIVE python benchmarks/molecule_design.py condition --budget-s 900

``climb`` starts from the SMILES LSTM that ``benchmarks/molecules.py train smiles-lstm``
saved (a copy is fine-tuned; the original stays), runs ``HillClimb(model, "qed")`` and
compares the QED of the top 100 distinct generated molecules with the top 100 of the
molecules the model was trained on (MOSES train, the same ``n_train`` prefix); it draws
both distributions and the best generated molecules.

``latent`` runs ``LatentSearch(vae, "qed")`` (the cross-entropy method over the codes of
the SMILES VAE ``benchmarks/molecules.py train smiles-vae-lm`` saved) and reports the same
comparison.

``condition`` trains a QED-conditioned LSTM (``condition_splits``, 4 quantile bins) for the
budget and reports, per bin, the share of samples whose QED lands in the bin asked for
(an unconditioned model would put ~25 % in each).

    python benchmarks/molecule_design.py --smoke     # climb, latent and condition, tiny

``--smoke`` runs the three commands in a temporary folder, starting from a small SMILES LSTM
and SMILES VAE trained there for a few steps on 60 short chain molecules (C, N, O: every
string of them is valid SMILES, so even a barely trained model yields molecules to score
and fine-tune on), with 1-2 rounds of 16 samples.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import _common
from _common import Budget, save

import numpy as np
import torch

OUT = Path("benchmarks/out/molecules")


def _start(args, source: str, work_name: str):
    """The saved model ``source``, its train.json and an emptied work folder."""
    import genlab

    torch.set_num_threads(args.threads)
    src = OUT / source
    info = json.loads((src / "train.json").read_text())
    work = OUT / work_name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return genlab.load(src / "model"), info, work


def climb(args) -> None:
    from genlab.pipelines.molecule_design import HillClimb

    model, info, work = _start(args, "smiles-lstm", "qed-climb")
    t0 = time.time()
    out = HillClimb(model, "qed", n_jobs=args.n_jobs)(rounds=args.rounds, n_samples=args.n_samples,
                                                       keep=args.keep, epochs=args.epochs, lr=args.lr, seed=0)
    wall = time.time() - t0
    model.save(work / "model")
    _report(out, wall, info, work, args, "molecule_design_climb", "climb.json",
            {"rounds": args.rounds, "n_samples": args.n_samples, "keep": args.keep, "epochs": args.epochs,
             "lr": args.lr})


def latent(args) -> None:
    """Cross-entropy search over the SMILES VAE's codes (the model is not changed)."""
    from genlab.pipelines.molecule_design import LatentSearch

    model, info, work = _start(args, args.vae, "qed-latent")
    t0 = time.time()
    out = LatentSearch(model, "qed", n_jobs=args.n_jobs)(rounds=args.rounds, n_samples=args.n_samples,
                                                          elite=args.elite, seed=0)
    wall = time.time() - t0
    _report(out, wall, info, work, args, "molecule_design_latent", "latent.json",
            {"vae": args.vae, "rounds": args.rounds, "n_samples": args.n_samples, "elite": args.elite})


def _report(out, wall, info, work, args, bench, fname, settings) -> None:
    """The top 100 distinct generated molecules' QED against the training set's top 100."""
    from genlab.chem import save_grid
    from genlab.data.datasets import load_splits
    from genlab.pipelines.molecule_design import property_values

    top_gen = out["top"][:100]
    data = info.get("data", "moses")  # the model's training molecules
    train = (load_splits("moses", n_train=info["n_train"], n_eval=100) if data.startswith("moses")
             else load_splits(data))["train"].meta["items"]
    cache = OUT / f"train-qed-top100-{info['n_train']}.json"  # QED of 250k molecules: minutes
    if cache.exists():
        top_train = [tuple(r) for r in json.loads(cache.read_text())]
    else:
        q = property_values("qed", train, n_jobs=args.n_jobs)
        order = np.argsort(-np.nan_to_num(q, nan=-1))[:100]
        top_train = [(train[i], float(q[i])) for i in order]
        cache.write_text(json.dumps(top_train))
    novel = set(train)
    g = np.array([v for _, v in top_gen])
    t = np.array([v for _, v in top_train])
    rec = {**settings, "wall_s": wall, "history": out["history"], "n_train": info["n_train"],
           "top100_generated": {"mean": g.mean(), "min": g.min(), "max": g.max(),
                                "novel": sum(s not in novel for s, _ in top_gen)},
           "top100_train": {"mean": t.mean(), "min": t.min(), "max": t.max()},
           "best_generated": top_gen[:12], "best_train": top_train[:12]}
    (work / fname).write_text(json.dumps(rec, indent=1))
    _plot(g, t, work / "qed_top100.png")
    save_grid([s for s, _ in top_gen[:12]], work / "best_generated.png", legends=[f"QED {v:.3f}" for _, v in top_gen[:12]])
    print(json.dumps({k: v for k, v in rec.items() if k not in ("best_generated", "best_train")}, indent=1))
    _common.ratio(f"{bench} mean QED of the top 100", float(g.mean()), float(t.mean()),
                  "top 100 training molecules")
    save({"benchmark": bench, **rec}, f"benchmarks/out/{bench}.json")


def _plot(gen: np.ndarray, train: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(min(gen.min(), train.min()) - 0.005, max(gen.max(), train.max()) + 0.005, 30)
    ax.hist(train, bins=bins, alpha=0.6, label=f"top 100 of the training set (mean {train.mean():.3f})")
    ax.hist(gen, bins=bins, alpha=0.6, label=f"top 100 generated (mean {gen.mean():.3f})")
    ax.set_xlabel("QED")
    ax.set_ylabel("molecules")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)




def condition(args) -> None:
    from genlab.data.datasets import load_splits
    from genlab.models.sequence import LSTM
    from genlab.pipelines.molecule_design import condition_splits, conditioning_report

    torch.set_num_threads(args.threads)
    data = (load_splits("moses", n_train=args.n_train, n_eval=1000) if args.data == "moses"
            else load_splits(args.data))
    splits = condition_splits(data, "qed", bins=4, n_jobs=args.n_jobs)
    model = LSTM(hidden=args.hidden, layers=2)
    budget = Budget(args.budget_s)
    model.fit(splits["train"], {"epochs": 100, "batch_size": 128, "lr": 1e-3, "threads": args.threads,
                                "val_fraction": 0, "progress": True, "seed": 0}, callbacks=[budget])
    work = OUT / "qed-conditioned"
    model.save(work / "model")
    rows = conditioning_report(model, "qed", n=args.n, n_jobs=args.n_jobs)
    rec = {"budget_s": args.budget_s, "steps": budget.steps, "n_train": args.n_train, "n_per_bin": args.n,
           "bins": rows}
    (work / "condition.json").write_text(json.dumps(rec, indent=1))
    print("| QED bin asked for | samples valid | mean QED of valid samples | share inside the bin |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| [{r['low']:.3g}, {r['high']:.3g}) | {r['valid']:.3f} | {r['mean']:.3f} | {r['in_bin']:.3f} |")
    hit = [r["in_bin"] for r in rows if r["in_bin"] == r["in_bin"]]  # NaN: no valid sample
    _common.ratio("share of samples in the QED bin asked for", sum(hit) / len(hit) if hit else float("nan"),
                  1 / len(rows), "an unconditioned model")
    save({"benchmark": "molecule_design_condition", **rec}, "benchmarks/out/molecule_design_condition.json")


def smoke(ap) -> None:
    """``--smoke``: small source models in a temporary folder, then the three commands."""
    global OUT
    from itertools import product

    import genlab
    from genlab.chem import canonical
    from genlab.data.datasets import load_splits

    if not _common.have("rdkit"):
        _common.smoke_skip("RDKit is not installed (pip install 'genlab[chem]')")
    torch.set_num_threads(1)
    OUT = _common.smoke_dir() / "molecules"
    OUT.mkdir(parents=True)
    chains = list(dict.fromkeys(canonical("".join(p)) for n in range(2, 7) for p in product("CNO", repeat=n)))
    smi = OUT / "chains.smi"
    smi.write_text("\n".join(chains[:60]) + "\n")
    splits = load_splits(smi)
    for name, mtype, cfg in (("smiles-lstm", "lstm", {"hidden": 32, "layers": 1}),
                             ("smiles-vae-lm", "seqvae", {"enc_hidden": 32, "dec_hidden": 32, "latent_dim": 8})):
        model = genlab.MODELS.get(mtype)(**cfg).fit(
            splits["train"], {"epochs": 30, "batch_size": 16, "lr": 1e-2, "seed": 0, "val_fraction": 0,
                              "progress": False})
        model.save(OUT / name / "model")
        (OUT / name / "train.json").write_text(json.dumps({"n_train": len(splits["train"]), "data": str(smi)}))
    common = {"threads": 1, "n_jobs": 1}
    climb(argparse.Namespace(**common, rounds=2, n_samples=16, keep=4, epochs=1, lr=5e-4))
    latent(argparse.Namespace(**common, vae="smiles-vae-lm", rounds=2, n_samples=16, elite=0.25))
    condition(argparse.Namespace(**common, budget_s=0, n_train=0, n=8, data=str(smi), hidden=32))


def main() -> None:
    ap = argparse.ArgumentParser()
    _common.add_smoke(ap)
    sub = ap.add_subparsers(dest="cmd", required="--smoke" not in sys.argv[1:])
    c = sub.add_parser("climb")
    c.add_argument("--rounds", type=int, default=8)
    c.add_argument("--n-samples", type=int, default=2000)
    c.add_argument("--keep", type=int, default=500)
    c.add_argument("--epochs", type=int, default=1)
    c.add_argument("--lr", type=float, default=5e-4)
    lt = sub.add_parser("latent")
    lt.add_argument("--vae", default="smiles-vae-lm", help="model folder name under benchmarks/out/molecules")
    lt.add_argument("--rounds", type=int, default=10)
    lt.add_argument("--n-samples", type=int, default=1000)
    lt.add_argument("--elite", type=float, default=0.1)
    k = sub.add_parser("condition")
    k.add_argument("--budget-s", type=float, default=900)
    k.add_argument("--n-train", type=int, default=100_000)
    k.add_argument("--n", type=int, default=1000)
    k.add_argument("--data", default="moses", help="moses, or a .smi file of molecules")
    k.add_argument("--hidden", type=int, default=256)
    for p in (c, lt, k):
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args()
    if _common.start_smoke(args):
        return smoke(ap)
    {"climb": climb, "latent": latent, "condition": condition}[args.cmd](args)


if __name__ == "__main__":
    main()
