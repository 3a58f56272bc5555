"""How many CPU threads should genlab train with by default? Steps per second of the
README's models at 1 thread and at torch's default (one per core), alternating in one
process on identical batches.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/threads.py --steps 40 --reps 3
    python benchmarks/threads.py --smoke     # the quickstart VAE only, 3 steps
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import statistics
import time

import torch

import genlab
from genlab.data.datasets import load_splits

CASES = {
    # name: (model type, config, data set, batch size)
    "quickstart VAE (MLP 64-512-256-16, digits)": ("vae", {"arch": "mlp", "latent_dim": 16, "hidden": (512, 256)},
                                                   "digits", 32),
    "VAE (MLP 784-512-256-32, Fashion-MNIST)": ("vae", {"hidden": (512, 256), "latent_dim": 32}, "fashion-mnist", 128),
    "conv VAE (Fashion-MNIST)": ("vae", {"arch": "conv", "latent_dim": 32}, "fashion-mnist", 128),
    "LSTM 256 x 2 (Shakespeare, 128 tokens)": ("lstm", {"hidden": 256, "layers": 2}, "shakespeare", 64),
}


def steps_per_s(model: torch.nn.Module, batches: list[dict], threads: int) -> float:
    torch.set_num_threads(threads)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    t = time.perf_counter()
    for b in batches:
        loss = model(b)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(batches) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=3)
    _common.add_smoke(ap)
    args = ap.parse_args()
    cases = CASES
    if _common.start_smoke(args):  # digits ship with scikit-learn: always there
        args.steps, args.reps = 3, 1
        cases = dict(list(CASES.items())[:1])
    default = torch.get_num_threads()
    print(f"torch default threads: {default}")
    print("| model | batch | steps/s, 1 thread | steps/s, default | 1 thread / default |")
    print("|---|---|---|---|---|")
    for name, (kind, cfg, data, bs) in cases.items():
        try:
            train = load_splits(data)["train"]
        except Exception as e:  # noqa: BLE001 — a data set that is not installed
            print(f"| {name} | skipped: {e} |")
            continue
        model = genlab.MODELS.get(kind)(**cfg)
        model.prepare(train)
        g = torch.Generator().manual_seed(0)
        batches = []
        for _ in range(args.steps):
            idx = torch.randint(0, len(train), (bs,), generator=g)
            batches.append({"x": train.x[idx]})
        steps_per_s(model, batches[:3], 1)  # warm-up
        one, many = [], []
        for _ in range(args.reps):
            one.append(steps_per_s(model, batches, 1))
            many.append(steps_per_s(model, batches, default))
        a, b = statistics.median(one), statistics.median(many)
        print(f"| {name} | {bs} | {a:.1f} | {b:.1f} | {a / b:.2f} |", flush=True)
        _common.ratio(f"{name} steps/s at 1 thread", a, b, f"{default} threads")
    torch.set_num_threads(default)


if __name__ == "__main__":
    main()
