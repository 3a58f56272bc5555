"""Every evaluation metric for a VAE trained on Fashion-MNIST, with real-vs-real floors.

Two runs, each trained with ``genlab.workflow.train_run`` and scored with ``genlab evaluate``:
(a) a convolutional VAE on the grey-level images (Bernoulli likelihood on [0, 1] pixels,
the usual practice) for every sample-based metric, in the shipped Fashion-MNIST judge's
feature space; (b) an MLP VAE on binarised images, for the likelihood (a Bernoulli model
assigns probabilities to binary data only): IWAE NLL with K = 1000.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/vae_evaluation.py --epochs 10 -n 10000
    python benchmarks/vae_evaluation.py --smoke     # 1 epoch on 256 images, 64 samples, K = 5
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import shutil
import time

from genlab.evaluation import evaluate_run, format_rows
from genlab.report import write_report
from genlab.workflow import train_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--n-likelihood", type=int, default=1000)
    ap.add_argument("--out", default="benchmarks/out/vae_evaluation")
    _common.add_smoke(ap)
    args = ap.parse_args()
    limit = None
    if _common.start_smoke(args):
        args.epochs, args.n, args.k, args.n_likelihood, limit = 1, 64, 5, 16, 256
    _common.splits_or_skip("fashion-mnist", limit=1)  # a smoke run ends here without the data
    out = _common.out_path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    result = {}
    t = time.time()
    conv = train_run("vae", "fashion-mnist", out=out / "conv", data_options={"limit": limit} if limit else None,
                     train={"epochs": args.epochs, "batch_size": 128, "lr": 1e-3, "progress": False},
                     model_config={"arch": "conv", "channels": (32, 64), "hidden": (256,), "latent_dim": 32})
    train_s = time.time() - t
    t = time.time()
    rec = evaluate_run(conv, n=args.n, metrics="fid,kid,is,prdc,modes,memorization,diversity,ppl", progress=False)
    write_report(conv)  # as genlab evaluate does (and as the timing always included)
    result["conv"] = {"train_s": train_s, "eval_s": time.time() - t, "rows": rec["rows"], "notes": rec["notes"]}
    print(f"(a) conv VAE, {args.epochs} epochs, trained in {train_s:.0f} s, scored in {result['conv']['eval_s']:.0f} s")
    print(format_rows(rec["rows"]))
    for r in rec["rows"]:  # each score against its real-vs-real floor
        if r["metric"] in ("fid", "kid") and r.get("floor") is not None:
            _common.ratio(f"(a) {r['metric']} (lower is better)", r["value"], r["floor"], "real-vs-real floor")
    t = time.time()
    mlp = train_run("vae", "fashion-mnist", out=out / "binary",
                    data_options={"binarize": True, **({"limit": limit} if limit else {})},
                    train={"epochs": args.epochs, "batch_size": 128, "lr": 1e-3, "progress": False},
                    model_config={"hidden": (512, 256), "latent_dim": 32})
    train_s = time.time() - t
    t = time.time()
    rec = evaluate_run(mlp, n=args.n, metrics="nll", iwae_k=args.k, n_likelihood=args.n_likelihood, progress=False)
    write_report(mlp)
    result["binary"] = {"train_s": train_s, "eval_s": time.time() - t, "rows": rec["rows"]}
    print(f"(b) MLP VAE on binarised images, trained in {train_s:.0f} s, NLL in {result['binary']['eval_s']:.0f} s")
    print(format_rows(rec["rows"]))
    _common.save({"args": vars(args), "results": result}, out / "result.json")


if __name__ == "__main__":
    main()
