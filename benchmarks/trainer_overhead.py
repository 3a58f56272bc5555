"""Trainer overhead: genlab's training loop against a bare hand-written PyTorch loop.

Same model (genlab's MLP VAE, 784-512-256-32, Bernoulli), same data (binarised
Fashion-MNIST training images), same batch size and optimizer (Adam 1e-3). The two loops
run alternately, ``--reps`` times each, in one process; throughput is examples per second
of wall time, the median over repetitions. genlab is timed twice: in memory, and with a
run folder (metrics log every 10 steps, atomic checkpoint every 200 steps, NaN guard,
progress bookkeeping) as the CLI uses it.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/trainer_overhead.py --n 20000 --reps 5
    python benchmarks/trainer_overhead.py --smoke     # 256 images, one repetition
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import statistics
import tempfile
import time

import torch

import genlab

CFG = dict(hidden=(512, 256), latent_dim=32, likelihood="bernoulli")


def bare_loop(x: torch.Tensor, batch_size: int, seed: int) -> float:
    """The loop a user would write by hand around the same model. Returns seconds."""
    torch.manual_seed(seed)
    model = genlab.models.VAE(data_shape=tuple(x.shape[1:]), **CFG)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    t = time.perf_counter()
    perm = torch.randperm(len(x))
    for i in range(0, len(x), batch_size):
        loss = model({"x": x[perm[i:i + batch_size]]})["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def genlab_loop(ds, batch_size: int, seed: int, run_dir: str | None) -> float:
    model = genlab.models.VAE(**CFG)
    t = time.perf_counter()
    model.fit(ds, {"epochs": 1, "batch_size": batch_size, "lr": 1e-3, "seed": seed, "val_fraction": 0,
                   "progress": False}, run_dir=run_dir)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="training images per epoch")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/out/trainer_overhead.json")
    _common.add_smoke(ap)
    args = ap.parse_args()
    if _common.start_smoke(args):
        args.n, args.reps = 256, 1
    torch.set_num_threads(args.threads)
    ds = _common.splits_or_skip("fashion-mnist", binarize=True, limit=args.n)["train"]
    times = {"bare": [], "genlab": [], "genlab+run": []}
    for rep in range(args.reps):
        times["bare"].append(bare_loop(ds.x, args.batch_size, rep))
        times["genlab"].append(genlab_loop(ds, args.batch_size, rep, None))
        with tempfile.TemporaryDirectory() as d:
            times["genlab+run"].append(genlab_loop(ds, args.batch_size, rep, d))
        print(f"rep {rep}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    thr = {k: len(ds) / statistics.median(v) for k, v in times.items()}
    print(f"\n{len(ds)} images/epoch, batch {args.batch_size}, {args.threads} thread(s), median of {args.reps}")
    print("| loop | examples/s | ratio to bare |")
    print("|---|---|---|")
    for k, v in thr.items():
        print(f"| {k} | {v:.0f} | {v / thr['bare']:.3f} |")
    for k in ("genlab", "genlab+run"):
        _common.ratio(f"{k} examples/s", thr[k], thr["bare"], "bare loop")
    _common.save({"args": vars(args), "seconds": times, "examples_per_s": thr,
                  "ratio": {k: v / thr["bare"] for k, v in thr.items()}}, args.out)


if __name__ == "__main__":
    main()
