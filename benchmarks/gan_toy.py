"""Mode collapse on the 2-D toys (ring of 8, grid of 25): a plain GAN vs genlab's best
configuration, with the standard protocol (VEEGAN / PacGAN): 2,500 samples, a mode is
covered when at least one sample lies within 3 std of its centre, and the share of such
high-quality samples.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/gan_toy.py [--seeds 5] [--steps-ring 3000 --steps-grid 10000]
    python benchmarks/gan_toy.py --smoke     # ring of 8, 1 seed, 20 steps per configuration

Every run: 1 thread, batch 256, the same MLPs (3 x 128 hidden, z in R^2) and learning rates
(Adam 5e-4, betas 0.5/0.999); only the loss / options differ. The plain GAN is the original
minimax GAN of Goodfellow et al. with nothing added (the baseline of VEEGAN / PacGAN), once
with our settings and once with the papers' (batch 100, learning rate 1e-4), where it
collapses. genlab's
best adds the non-saturating generator loss, batch norm in the generator (as in the VEEGAN /
PacGAN toy generators), a minibatch-std feature in D, an EMA of G's weights and a cosine
learning-rate decay to 10%. Results go to benchmarks/out/gan_toy.json.
"""
from __future__ import annotations

import argparse
import time

import _common
from _common import save

import torch

from genlab.data.datasets import load_splits
from genlab.metrics import toy_mode_metrics
from genlab.models.gan import GAN

NET = {"arch": "mlp", "hidden": (128, 128, 128), "latent_dim": 2, "lr_g": 5e-4, "lr_d": 5e-4}
TRAIN = {"epochs": 10_000, "batch_size": 256, "threads": 1, "progress": False}
# name -> (GAN options, TrainConfig options)
CONFIGS = {
    "plain GAN (minimax)": ({"loss": "minimax"}, {}),
    "plain GAN, the papers' settings (minimax, batch 100, Adam 1e-4)": (
        {"loss": "minimax", "lr_g": 1e-4, "lr_d": 1e-4}, {"batch_size": 100}),
    "genlab best (non-saturating + G batch norm + minibatch std + EMA 0.999 + cosine lr)": (
        {"loss": "nonsaturating", "g_batchnorm": True, "minibatch_std": True, "ema_decay": 0.999},
        {"schedule": "cosine", "min_lr_ratio": 0.1}),
}


def run(data: str, cfg: tuple[dict, dict], steps: int, seed: int) -> dict:
    splits = load_splits(data)
    t = time.time()
    m = GAN(**{**NET, **cfg[0]}).fit(splits["train"], {**TRAIN, **cfg[1], "max_steps": steps, "seed": seed})
    wall = time.time() - t
    x = m.sample(2500, generator=torch.Generator().manual_seed(10_000 + seed))
    r = toy_mode_metrics(x, data)
    return {"modes": r["modes_covered"], "of": r["num_modes"], "hq": r["high_quality_share"], "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", default=None, help="run the configurations whose name contains this")
    ap.add_argument("--data", nargs="+", default=["ring8", "grid25"], choices=["ring8", "grid25"])
    ap.add_argument("--steps-ring", type=int, default=3000)
    ap.add_argument("--steps-grid", type=int, default=10000)
    _common.add_smoke(ap)
    args = ap.parse_args()
    if _common.start_smoke(args):
        args.seeds, args.data, args.steps_ring = 1, ["ring8"], 20
    torch.set_num_threads(1)
    steps = {"ring8": args.steps_ring, "grid25": args.steps_grid}
    rows = []
    for data in args.data:
        for name, cfg in CONFIGS.items():
            if args.only and args.only not in name:
                continue
            per_seed = [run(data, cfg, steps[data], s) for s in range(args.seeds)]
            for s, r in enumerate(per_seed):
                print(f"  {data} {name} seed {s}: {r['modes']}/{r['of']} modes, hq {r['hq']:.3f}, {r['wall_s']:.0f} s",
                      flush=True)
            rows.append({"data": data, "config": name, "options": cfg[0], "train": cfg[1], "steps": steps[data], "seeds": args.seeds,
                         "modes_mean": sum(r["modes"] for r in per_seed) / len(per_seed),
                         "modes": [r["modes"] for r in per_seed], "of": per_seed[0]["of"],
                         "hq_mean": sum(r["hq"] for r in per_seed) / len(per_seed),
                         "wall_s_mean": sum(r["wall_s"] for r in per_seed) / len(per_seed)})
    print(f"\n| data | configuration | steps (batch 256, 1 thread) | modes covered (mean of {args.seeds} seeds) "
          "| per seed | high-quality share | wall s / run |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['data']} | {r['config']} | {r['steps']} | {r['modes_mean']:.2f} / {r['of']} | "
              f"{', '.join(map(str, r['modes']))} | {r['hq_mean']:.3f} | {r['wall_s_mean']:.0f} |")
    for data in args.data:  # genlab's best against the plain GAN with the same settings
        by = {r["config"]: r for r in rows if r["data"] == data}
        best = next((r for k, r in by.items() if k.startswith("genlab best")), None)
        plain = by.get("plain GAN (minimax)")
        if best and plain:
            _common.ratio(f"{data} modes covered", best["modes_mean"], plain["modes_mean"], "plain GAN")
    save({"benchmark": "gan_toy", "net": {k: list(v) if isinstance(v, tuple) else v for k, v in NET.items()},
          "rows": rows}, f"benchmarks/out/gan_toy_{'_'.join(args.data)}.json")


if __name__ == "__main__":
    main()
