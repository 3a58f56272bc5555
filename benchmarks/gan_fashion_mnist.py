"""GANs on Fashion-MNIST under one CPU budget: DCGAN (non-saturating), WGAN-GP and
hinge + spectral norm, plus a conditional GAN (hinge + SN, projection D, conditional BN).

Each model trains for the same wall-clock budget at 1 thread (a callback stops the loop;
the steps reached are reported), with the same DCGAN-style nets (G: linear -> 7x7x128 ->
14x14x64 -> 28x28, batch norm; D: 64/128-channel stride-2 convs), batch 64, EMA of G
(0.999), Adam. Scores in the shipped fashion-mnist judge's feature space on N samples vs
N test images, with the real-vs-real floor (N training images vs the same test images):
FID, KID, precision/recall, class-histogram coverage; for the conditional GAN the share
of samples whose judge argmax equals the requested class.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/gan_fashion_mnist.py [--budget-s 240] [--n 2000]
    python benchmarks/gan_fashion_mnist.py --smoke     # one step per model, 64 samples
"""
from __future__ import annotations

import argparse
import time

import _common
from _common import Budget, save

import torch

from genlab.evaluation import compare_sets
from genlab.metrics.judges import judge_for
from genlab.models.gan import GAN

NET = {"arch": "conv", "latent_dim": 64, "g_channels": (128, 64), "d_channels": (64, 128), "ema_decay": 0.999}
CONFIGS = {
    "DCGAN (non-saturating)": {"loss": "nonsaturating"},
    "WGAN-GP (n_critic 2, gp 10)": {"loss": "wgan-gp", "n_critic": 2, "betas": (0.5, 0.9), "lr_g": 1e-4, "lr_d": 1e-4},
    "hinge + spectral norm": {"loss": "hinge", "spectral_norm": True, "lr_g": 1e-4, "lr_d": 4e-4},
    "conditional (hinge + SN, projection)": {"loss": "hinge", "spectral_norm": True, "lr_g": 1e-4, "lr_d": 4e-4,
                                             "num_classes": -1},
}




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget-s", type=float, default=240)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--only", default=None, help="substring of a config name")
    _common.add_smoke(ap)
    args = ap.parse_args()
    smoke = _common.start_smoke(args)
    if smoke:  # the budget stops each model after its first step
        args.budget_s, args.n = 0, 64
    torch.set_num_threads(1)
    splits = _common.splits_or_skip("fashion-mnist", limit=256 if smoke else None)
    train, test = splits["train"], splits["test"]
    judge = judge_for("fashion-mnist")
    real = test.x[:args.n]
    rows = []
    for name, cfg in CONFIGS.items():
        if args.only and args.only not in name:
            continue
        m = GAN(**NET, **cfg)
        t = time.time()
        budget = Budget(args.budget_s)
        stepper = {}

        class Count:
            def on_step_end(self, trainer, logs):
                stepper["steps"] = trainer.step  # noqa: B023 — read within the iteration that defines it

        m.fit(train, {"epochs": 1000, "batch_size": 64, "seed": 0, "threads": 1, "progress": False,
                      "val_fraction": 0}, callbacks=[budget, Count()])
        wall = time.time() - t
        g = torch.Generator().manual_seed(0)
        y = torch.arange(args.n) % 10
        fake = torch.cat([m.sample(len(y[i:i + 500]), generator=g,
                                   **({"y": y[i:i + 500]} if m.config.num_classes else {}))
                          for i in range(0, args.n, 500)])
        res = compare_sets(real, fake, judge=judge, metrics=("fid", "kid", "prdc", "modes"), train=train.x,
                           real_labels=test.y[:args.n], progress=False)
        vals = {r["metric"]: (r["value"], r["floor"]) for r in res["rows"]}
        row = {"config": name, "options": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
               "steps": stepper.get("steps"), "wall_s": round(wall, 1), **{k: v[0] for k, v in vals.items()},
               "floors": {k: v[1] for k, v in vals.items()}}
        if m.config.num_classes:
            pred = judge.extract(fake, progress=False)["probs"].argmax(1)
            row["class_accuracy"] = float((pred == y).double().mean())
            row["class_accuracy_real_test"] = float(judge.accuracy(test.x[:args.n], test.y[:args.n]))
        print(f"  {name}: {row['steps']} steps in {wall:.0f} s, FID {row['fid']:.2f}, KID {row['kid']:.4f}, "
              f"P {row['precision']:.3f} R {row['recall']:.3f}, classes {row['classes_found']}"
              + (f", class acc {row['class_accuracy']:.3f}" if "class_accuracy" in row else ""), flush=True)
        rows.append(row)
    fl = rows[0]["floors"]
    print(f"\nBudget: {args.budget_s:.0f} s of training per model, 1 thread, batch 64; scores on {args.n} samples vs "
          f"{args.n} test images, feature space {judge.feature_space}.\n")
    print("| model | G steps | FID | KID | precision | recall | classes found | class KL | class acc. |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['config']} | {r['steps']} | {r['fid']:.2f} | {r['kid']:.4f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['classes_found']}/10 | {r['class_kl']:.3f} | "
              f"{r.get('class_accuracy', float('nan')):.3f} |")
    print(f"| real-vs-real floor (train vs test) | - | {fl['fid']:.2f} | {fl['kid']:.4f} | {fl['precision']:.3f} | "
          f"{fl['recall']:.3f} | {fl['classes_found']}/10 | {fl['class_kl']:.3f} | "
          f"{rows[-1].get('class_accuracy_real_test', float('nan')):.3f} (judge on real test) |")
    for r in rows:
        _common.ratio(f"{r['config']} FID (lower is better)", r["fid"], fl["fid"], "real-vs-real floor")
    save({"benchmark": "gan_fashion_mnist", "budget_s": args.budget_s, "n": args.n,
          "net": {k: list(v) if isinstance(v, tuple) else v for k, v in NET.items()}, "rows": rows},
         "benchmarks/out/gan_fashion_mnist.json")


if __name__ == "__main__":
    main()
