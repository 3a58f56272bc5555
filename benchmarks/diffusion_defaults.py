"""Which diffusion defaults? Class-conditional digits models of the same U-Net trained for
the same number of steps under four settings (noise schedule x prediction x loss
weighting), each scored by FID in the digits judge's space and class accuracy (judge
argmax = requested class) on 1,000 samples, with DDIM-50 and DPM-Solver++-20 at guidance
w = 1 and 3; and the variational bound on 200 test digits (all 999 terms).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_defaults.py --steps 1500
    python benchmarks/diffusion_defaults.py --smoke
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import os
import time

import torch

from genlab.data.datasets import load_splits
from genlab.metrics import functional as F
from genlab.metrics.judges import judge_for
from genlab.models import Diffusion

CONFIGS = [dict(noise_schedule="cosine", prediction="epsilon"), dict(noise_schedule="cosine", prediction="v"),
           dict(noise_schedule="linear", prediction="epsilon"),
           dict(noise_schedule="cosine", prediction="epsilon", loss_weighting="min-snr")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--n-nll", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    _common.add_smoke(ap)
    args = ap.parse_args()
    smoke = _common.start_smoke(args)
    torch.set_num_threads(args.threads)
    sp = load_splits("digits")
    test, judge = sp["test"], judge_for("digits")
    real = judge.extract(test.x, progress=False)["features"]
    steps, n, n_nll = (3, 20, 4) if smoke else (args.steps, args.n, args.n_nll)
    extra = {"channels": 8, "heads": 2} if smoke else {}
    print(f"load at start {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for cfg in CONFIGS[:2] if smoke else CONFIGS:
        t0 = time.perf_counter()
        m = Diffusion(num_classes=-1, **cfg, **extra).fit(sp["train"], {
            "max_steps": steps, "epochs": 10 ** 6, "batch_size": 128, "lr": 1e-3, "threads": args.threads,
            "progress": False}, val=sp["val"])
        train_s = time.perf_counter() - t0
        lp = m.log_prob(test.x[:n_nll], timesteps=0, generator=torch.Generator().manual_seed(0))
        row = {**cfg, "train_s": round(train_s, 1), "nll_nats": float(-lp.mean()),
               "bits_per_dim": float(-lp.mean()) / (64 * 0.693147)}
        for sampler, st in [("ddim", 50), ("dpm++", 20)]:
            for w in (1.0, 3.0):
                y = torch.arange(n) % 10
                x = m.sample(n, y=y, sampler=sampler, steps=3 if smoke else st, guidance=w,
                             generator=torch.Generator().manual_seed(0))
                ex = judge.extract(x, progress=False)
                row[f"fid_{sampler}_w{w:g}"] = F.fid(real, ex["features"])
                row[f"acc_{sampler}_w{w:g}"] = float((ex["probs"].argmax(1) == y).double().mean())
        rows.append(row)
        print(row, flush=True)
    print(f"load at end {os.getloadavg()[0]:.2f}", flush=True)
    best = min(rows, key=lambda r: r["fid_dpm++_w1"])
    _common.ratio("best FID (dpm++, w=1) / cosine-epsilon FID", best["fid_dpm++_w1"], rows[0]["fid_dpm++_w1"],
                  "cosine-epsilon", "a genlab-only comparison of settings")
    print("\n| schedule | prediction | weighting | train s | NLL nats (bpd) | FID ddim w1 / w3 | acc ddim w1 / w3 "
          "| FID dpm++ w1 / w3 | acc dpm++ w1 / w3 |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['noise_schedule']} | {r['prediction']} | {r.get('loss_weighting', 'plain')} | {r['train_s']:.0f} "
              f"| {r['nll_nats']:.1f} ({r['bits_per_dim']:.3f}) | {r['fid_ddim_w1']:.2f} / {r['fid_ddim_w3']:.2f} "
              f"| {r['acc_ddim_w1']:.3f} / {r['acc_ddim_w3']:.3f} | {r['fid_dpm++_w1']:.2f} / {r['fid_dpm++_w3']:.2f} "
              f"| {r['acc_dpm++_w1']:.3f} / {r['acc_dpm++_w3']:.3f} |")
    _common.save({"steps": steps, "n": n, "threads": args.threads, "rows": rows}, "benchmarks/out/diffusion_defaults.json")


if __name__ == "__main__":
    main()
