"""Molecule generators on MOSES under a CPU budget, scored with the whole MOSES metric set
beside the published MOSES rows (Polykovskiy et al. 2020).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/molecules.py train smiles-lstm --budget-s 1800
    OMP_WAIT_POLICY=PASSIVE python benchmarks/molecules.py train smiles-lstm --resume --budget-s 3600 --anneal-from 1e-3
    OMP_WAIT_POLICY=PASSIVE python benchmarks/molecules.py score smiles-lstm --n 30000 --n-jobs 2
    OMP_WAIT_POLICY=PASSIVE python benchmarks/molecules.py table
    python benchmarks/molecules.py --smoke     # train (one step) -> score (20 molecules) -> table

``train`` fits one model on the first ``--n-train`` molecules of a seeded permutation of
MOSES train (genlab's ``moses`` / ``moses-selfies`` data sets) for ``--budget-s`` seconds
of wall clock at ``--threads`` threads (a callback stops the loop; the steps reached are
recorded) and saves it as a genlab model folder under ``benchmarks/out/molecules/NAME``.
``score`` samples ``--n`` molecules (temperature 1, seed 0) and computes the MOSES metrics
against MOSES test / scaffold-test (their published statistics) with MOSES train for
novelty. ``table`` prints every scored model beside the published rows.

``--smoke`` runs the three commands on the SMILES LSTM in a temporary folder: 200 training
molecules, one optimizer step, 20 samples scored (against small reference lists, should any
be valid).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import _common
from _common import Budget, WallAnneal, save

import torch

from genlab.train.checkpoint import read_checkpoint

OUT = Path("benchmarks/out/molecules")
MODELS = {
    # name -> (model type, data set, model config)
    "smiles-lstm": ("lstm", "moses", {"hidden": 256, "layers": 2, "dropout": 0.0}),
    # a GPT-style causal Transformer (pre-LN, learned positions), 1.8M parameters: on one CPU
    # thread it takes ~2x the LSTM's time per step
    "smiles-transformer": ("transformer", "moses", {"d_model": 192, "layers": 4, "heads": 6, "dropout": 0.0}),
    "selfies-lstm": ("lstm", "moses-selfies", {"hidden": 256, "layers": 2, "dropout": 0.0}),
    # MOSES's VAE shape (bi-GRU encoder, GRU decoder, small KL weight), narrower for a CPU budget
    "smiles-vae": ("seqvae", "moses", {"enc_hidden": 256, "dec_hidden": 384, "dec_layers": 2, "latent_dim": 64,
                                       "kl_warmup_steps": 500}),
    # the same VAE with an LSTM decoder started from the SMILES-LSTM (its 105-minute weights,
    # copied to smiles-lstm-105min/model), trained on the ELBO (KL weight 1, free bits 0.15
    # nats per dimension): the CPU budget goes to the encoder and to using z
    "smiles-vae-lm": ("seqvae", "moses", {"enc_hidden": 256, "dec_cell": "lstm", "embed_dim": 256, "dec_hidden": 256,
                                          "dec_layers": 2, "latent_dim": 64, "kl_max": 1.0, "kl_warmup_steps": 1000,
                                          "free_bits": 0.15,
                                          "decoder_from": "benchmarks/out/molecules/smiles-lstm-105min/model"}),
}
# published MOSES rows (the figures; MOSES README / paper Table 2)
PUBLISHED = {
    "MOSES CharRNN": {"valid": 0.975, "unique@10000": 0.999, "FCD/Test": 0.073, "SNN/Test": 0.601,
                      "Frag/Test": 1.000, "Scaf/Test": 0.924, "IntDiv": 0.856, "Novelty": 0.842},
    "MOSES VAE": {"valid": 0.977, "FCD/Test": 0.099, "Novelty": 0.695},
}
COLUMNS = ["valid", "unique@1000", "unique@10000", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test",
           "FCD/TestSF", "SNN/TestSF", "Frag/TestSF", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters",
           "logP", "SA", "QED", "weight", "Novelty", "KL"]




def train(args) -> None:
    import genlab

    mtype, data, cfg = MODELS[args.name]
    torch.set_num_threads(args.threads)
    splits = _common.splits_or_skip(data, n_train=args.n_train, n_eval=args.n_eval)
    model = genlab.MODELS.get(mtype)(**cfg)
    budget = (WallAnneal(args.budget_s, args.anneal_from, final=0.05, warmup_s=args.warmup_s) if args.anneal_from
              else Budget(args.budget_s))
    t0 = time.time()
    run_dir = OUT / args.name / "run"
    before = json.loads((OUT / args.name / "train.json").read_text()) if args.resume else {"wall_s": 0, "steps": 0}
    if args.resume:  # continue from the last checkpoint (the trainer restores weights, optimizer, step)
        budget.steps = int(read_checkpoint(run_dir / "checkpoints" / "last.pt")["step"])
    model.fit(splits["train"], {"epochs": 100, "batch_size": args.batch_size, "lr": args.lr, "threads": args.threads,
                                "val_fraction": 0, "progress": True, "seed": 0, "log_every": 50,
                                "checkpoint_every": args.checkpoint_every},
              run_dir=run_dir, callbacks=[budget], resume=args.resume)
    wall = time.time() - t0 + before["wall_s"]
    model.save(OUT / args.name / "model")
    nll = float(model.nll_per_token(splits["test"].x[:2000])) if hasattr(model, "nll_per_token") else None
    info = {"name": args.name, "model_type": mtype, "data": data, "config": cfg, "n_train": len(splits["train"]),
            "budget_s": args.budget_s + before.get("budget_s", 0), "wall_s": wall, "steps": budget.steps, "batch_size": args.batch_size,
            "molecules_seen": budget.steps * args.batch_size, "threads": args.threads, "lr": args.lr,
            "anneal": (before.get("anneal") or []) + ([{"from_lr": args.anneal_from, "budget_s": args.budget_s, "warmup_s": args.warmup_s}] if args.anneal_from else []),
            "test_nll_per_token": nll, "params": sum(p.numel() for p in model.parameters())}
    (OUT / args.name / "train.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))


def score(args) -> None:
    import genlab
    from genlab.metrics.molecules import moses_metrics, validity
    from genlab.pipelines.molecules import sample_smiles

    model = genlab.load(OUT / args.name / "model")
    torch.set_num_threads(args.threads)
    t0 = time.time()
    gen = sample_smiles(model, args.n, generator=torch.Generator().manual_seed(0), progress=True)
    t_sample = time.time() - t0
    (OUT / args.name / "samples.smi").write_text("\n".join(gen) + "\n")
    t0 = time.time()
    if validity(gen, n_jobs=args.n_jobs) == 0:  # the other metrics need valid molecules
        print(f"note: none of the {len(gen)} samples is a valid molecule: only 'valid' is scored")
        scores = {"valid": 0.0}
    else:
        scores = moses_metrics(gen, n_jobs=args.n_jobs, progress=not _common.SMOKE,
                               **(_common.smoke_moses_references() if _common.SMOKE else {}))
    t_score = time.time() - t0
    rec = {"name": args.name, "n": args.n, "sample_s": t_sample, "score_s": t_score, "metrics": scores}
    (OUT / args.name / "scores.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec, indent=1))


def table(args) -> None:
    rows = {}
    for d in sorted(OUT.glob("*/scores.json")):
        rec = json.loads(d.read_text())
        tr = json.loads((d.parent / "train.json").read_text())
        rows[f"genlab {rec['name']} ({tr['steps']} steps x {tr['batch_size']}, {tr['wall_s'] / 60:.0f} min)"] = rec["metrics"]
    cols = [c for c in COLUMNS if any(c in r for r in rows.values())]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, r in {**PUBLISHED, **rows}.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:.3f}" if c in r and r[c] == r[c] else "—"
                                                 for c in cols) + " |")
    print("\n".join(lines))
    for name, r in rows.items():
        _common.ratio(f"{name} validity", r["valid"], PUBLISHED["MOSES CharRNN"]["valid"], "MOSES CharRNN",
                      "published row" + (": smoke run, one training step" if _common.SMOKE else ""))
    save({"benchmark": "molecules", "rows": rows, "published": PUBLISHED}, "benchmarks/out/molecules.json")


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(OUT), help="folder of the model folders and scores")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("name", choices=sorted(MODELS))
    t.add_argument("--budget-s", type=float, default=1800)
    t.add_argument("--n-train", type=int, default=250_000)
    t.add_argument("--n-eval", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (resume needs the same)")
    t.add_argument("--resume", action="store_true", help="continue NAME's run for another --budget-s")
    t.add_argument("--anneal-from", type=float, default=None,
                   help="anneal the lr by wall clock from this value to 5%% of it over --budget-s "
                        "(half cosine; a final phase of a resumed run, or a whole run)")
    t.add_argument("--warmup-s", type=float, default=0.0, help="with --anneal-from: linear warm-up seconds first")
    s = sub.add_parser("score")
    s.add_argument("name", choices=sorted(MODELS))
    s.add_argument("--n", type=int, default=30000)
    s.add_argument("--n-jobs", type=int, default=2)
    s.add_argument("--threads", type=int, default=1)
    sub.add_parser("table")
    _common.add_smoke(ap)
    if "--smoke" in sys.argv[1:]:  # no command needed: runs train, score and table
        sub.required = False
    args = ap.parse_args()
    if _common.start_smoke(args):
        if not _common.have("rdkit"):
            _common.smoke_skip("RDKit is not installed (pip install 'genlab[chem]')")
        OUT = _common.smoke_dir() / "molecules"
        base = dict(name="smiles-lstm", threads=1, n_jobs=1)
        train(argparse.Namespace(**base, budget_s=0, n_train=200, n_eval=20, batch_size=16, lr=1e-3,
                                 checkpoint_every=500, resume=False, anneal_from=None, warmup_s=0.0))
        score(argparse.Namespace(**base, n=20))
        table(args)
        return
    OUT = Path(args.out)
    {"train": train, "score": score, "table": table}[args.cmd](args)


if __name__ == "__main__":
    main()
