"""Latent diffusion against pixel diffusion at equal CPU budget (issue 17, "Latent
diffusion in miniature").

**What is compared.** Two class-conditional models of ``--data`` (default ``digits``),
genlab's both, trained side by side, each in its own process at one thread until its
process's own CPU time passes ``--budget-min`` CPU-minutes
(``diffusion_vs_gan_budget.CpuBudget``):

* ``latent-diffusion``: the VAE first stage (the defaults: 8x8 digits to a 4x4x4 grid,
  28x28 to 7x7x4; KL weight 0.01) trained for its first ``--stage1-steps`` steps, then the
  diffusion prior on the frozen, scaled latents (64-channel U-Net) for the rest of the
  budget: one model folder.
* ``diffusion``: the pixel-space model with the settings of ``diffusion_defaults.py`` /
  ``diffusion_vs_gan_budget.py`` (cosine, v-prediction, 32-channel U-Net).

Both: batch 128, Adam lr 1e-3, label dropout 0.1 (the unconditional part guidance
needs), EMA 0.999, seed 0.

**Scoring.** After training, in this process (``--eval-threads``, not part of either
budget): ``--n-eval`` samples per model and guidance w = 1 and 3 (classes cycling, one
seed, DPM-Solver++ ``--steps`` 20), against as many real test images in the shipped
judge's feature space (``judge_for(--data)``): FID, KID, precision/recall and class
accuracy (judge argmax = the requested class), beside the real-vs-real floor; the sampling
time per 1,000 images; the first stage's reconstruction error on the test images. Ratio
lines: latent / pixel FID at w = 1 and 3 (below 1 favours latent), and pixel / latent
sampling time (above 1: latent samples faster).

**What it writes.** ``benchmarks/out/latent_diffusion.json`` and ``.png`` (samples of both
models at w = 3, one row per class), and the two model folders under
``benchmarks/out/latent_diffusion/``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/latent_diffusion.py --budget-min 4 --n-eval 1000
    python benchmarks/latent_diffusion.py --smoke     # tiny nets, 2 CPU-s each, 20 samples

**Run time, measured** (2026-12-04, quiet 2-core AMD EPYC machine, ``--budget-min 4``):
training 267 s of wall clock (4,459 and 1,436 steps), scoring the 269 digits test images'
worth of samples at w = 1 and 3 under a minute at 2 threads; about 5 min in all. A busy
machine takes longer (the budget is CPU time). ``--smoke`` about 20 s.
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import save
from diffusion_vs_gan_budget import CpuBudget, diffusion_samples, score, write_figure

import genlab
from genlab.data.datasets import load_splits
from genlab.metrics.judges import judge_for
from genlab.models import Diffusion, LatentDiffusion

KINDS = ("latent-diffusion", "diffusion")
CONFIG = {"latent-diffusion": {"num_classes": -1, "channels": 64},
          "diffusion": {"num_classes": -1, "noise_schedule": "cosine", "prediction": "v", "channels": 32}}
TRAIN = {"batch_size": 128, "lr": 1e-3, "seed": 0, "val_fraction": 0}
TINY = {"latent-diffusion": {"channels": 8, "heads": 2, "encoder_channels": (8,)},
        "diffusion": {"channels": 8, "heads": 2}}
OUT = "benchmarks/out/latent_diffusion"
GUIDANCES = (1.0, 3.0)


def build(kind: str, *, stage1_steps: int, tiny: bool):
    """An untrained model of ``kind`` with the benchmark's settings."""
    cfg = {**CONFIG[kind], **(TINY[kind] if tiny else {})}
    if kind == "diffusion":
        return Diffusion(**cfg)
    return LatentDiffusion(**cfg, stage1_steps=stage1_steps)


def worker(args) -> None:
    """One model's training process: trains to the budget, saves the model, writes a JSON."""
    torch.set_num_threads(1)
    splits = load_splits(args.data, **({"limit": args.limit} if args.limit else {}))
    model = build(args.worker, stage1_steps=args.stage1_steps, tiny=args.tiny)
    cb = CpuBudget([args.budget_s], name=args.worker, heartbeat_s=max(60.0, args.budget_s / 6))
    c0 = time.process_time()
    model.fit(splits["train"], {"max_steps": 10 ** 9, "epochs": 10 ** 6, "threads": 1, "progress": False, **TRAIN},
              callbacks=[cb])
    cpu = time.process_time() - c0
    model.save(args.model_dir)
    info = {"kind": args.worker, "steps": cb.steps, "train_cpu_s": round(cpu, 1),
            "cpu_s_per_step": round(cpu / max(cb.steps, 1), 4),
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    if args.worker == "latent-diffusion":
        info["stage1_steps"] = args.stage1_steps
    (Path(args.work) / f"{args.worker}.json").write_text(json.dumps(info, indent=1))
    print(f"[{args.worker}] done: {cb.steps} steps, {cpu:.1f} CPU-s; saved to {args.model_dir}", flush=True)


def train_both(args, budget_s: float, out: Path, smoke: bool) -> dict:
    """Both models side by side, one process each; returns each one's JSON."""
    with tempfile.TemporaryDirectory(prefix="ldm-bench-") as work:
        procs = {}
        for kind in KINDS:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--work", work, "--data", args.data,
                   "--model-dir", str(out / kind), "--budget-s", f"{budget_s:g}",
                   "--stage1-steps", str(args.stage1_steps)]
            cmd += (["--limit", "512", "--tiny"] if smoke else [])
            procs[kind] = subprocess.Popen(cmd, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        bad = {k: rc for k, p in procs.items() if (rc := p.wait()) != 0}
        if bad:
            sys.exit(f"training process(es) failed: {bad}")
        return {k: json.loads((Path(work) / f"{k}.json").read_text()) for k in KINDS}


def reconstruction_error(model, x: torch.Tensor) -> float:
    """Mean squared error per pixel of the first stage's reconstructions of ``x``."""
    with torch.no_grad():
        return float((model.reconstruct(x) - x).pow(2).mean())


def plot(samples: dict, classes: int, path: Path, budget_min: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 3.6))
    for ax, (name, x) in zip(axes, samples.items()):
        per = len(x) // classes
        tiles = torch.nn.functional.pad(x[:classes * per].clamp(0, 1), (1, 1, 1, 1), value=0.5)  # grey borders
        grid = tiles.reshape(per, classes, *tiles.shape[1:]).transpose(0, 1)  # rows: classes
        rows = [torch.cat(list(grid[c]), -1) for c in range(classes)]
        img = torch.cat(rows, -2)
        ax.imshow(img.permute(1, 2, 0).squeeze(-1).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"one row per class, w = 3, DPM-Solver++ 20 ({budget_min:.3g} CPU-min each)", fontsize=9)
    write_figure(fig, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-min", type=float, default=4.0, help="training budget per model, CPU-minutes (default 4)")
    ap.add_argument("--data", default="digits", help="image data set with a shipped judge (default digits)")
    ap.add_argument("--stage1-steps", type=int, default=1500, help="latent diffusion: first-stage steps (default 1500)")
    ap.add_argument("--n-eval", type=int, default=1000, help="samples (and test images) per model and guidance")
    ap.add_argument("--steps", type=int, default=20, help="DPM-Solver++ steps (default 20)")
    ap.add_argument("--eval-threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    for flag, kw in (("--worker", {"choices": KINDS}), ("--work", {}), ("--model-dir", {}),
                     ("--budget-s", {"type": float}), ("--limit", {"type": int}), ("--tiny", {"action": "store_true"})):
        ap.add_argument(flag, help=argparse.SUPPRESS, **kw)
    parsed = _common.parse_or_work(ap, worker)
    if parsed is None:
        return
    args, smoke = parsed
    if smoke:
        args.data, args.stage1_steps = "digits", 20
    if args.budget_min <= 0 or args.n_eval < 10 or args.stage1_steps < 1:
        sys.exit("--budget-min must be > 0, --n-eval >= 10 and --stage1-steps >= 1")
    budget_s = 2.0 if smoke else 60 * args.budget_min
    out = _common.out_path(OUT)
    print(f"training latent-diffusion and diffusion on {args.data} side by side, one process and one thread each, "
          f"to {budget_s:g} CPU-s of each process's own CPU time; load {os.getloadavg()[0]:.2f}", flush=True)
    t0 = time.perf_counter()
    infos = train_both(args, budget_s, out, smoke)
    print(f"training done in {time.perf_counter() - t0:.0f} s wall; load {os.getloadavg()[0]:.2f}", flush=True)
    torch.set_num_threads(1 if smoke else max(1, min(args.eval_threads, os.cpu_count() or 1)))
    splits = load_splits(args.data, **({"limit": 512} if smoke else {}))
    train, test = splits["train"], splits["test"]
    judge = judge_for(args.data)
    n = min(20 if smoke else args.n_eval, len(test))
    classes = int(test.y.max()) + 1
    real, y = test.x[:n], torch.arange(n) % classes
    floor = score(train.x[:n], None, real, judge)
    rows, shown = [], {}
    for kind in KINDS:
        model = genlab.load(out / kind)
        for w in GUIDANCES:
            t1, c1 = time.perf_counter(), time.process_time()
            x = diffusion_samples(model, y, guidance=w, steps=3 if smoke else args.steps, seed=args.seed)
            wall, cpu = time.perf_counter() - t1, time.process_time() - c1
            row = {"model": kind, "w": w, **infos[kind], "sample_wall_s_per_1000": round(wall * 1000 / n, 2),
                   "sample_cpu_s_per_1000": round(cpu * 1000 / n, 2), **score(x, y, real, judge)}
            if kind == "latent-diffusion":
                row["recon_mse"] = reconstruction_error(model, test.x[:n])
            rows.append(row)
            if w == 3.0:
                shown[f"{kind} ({infos[kind]['steps']} steps)"] = x[:classes * 8]
            print(f"[{kind}] w={w:g}: FID {row['fid']:.2f}, class acc {row['class_accuracy']:.3f}, "
                  f"{row['sample_wall_s_per_1000']:.1f} s per 1,000 images", flush=True)
    print(f"\n### {args.data}, class-conditional: {budget_s / 60:.3g} CPU-min per model (one thread, process CPU time)\n")
    _common.markdown_table(
        ["model", "parameters", "steps", "train CPU-s", "w", "FID", "KID", "precision", "recall", "class acc.",
         "s / 1,000 samples (wall)"],
        [[r["model"], f"{r['params']:,}", r["steps"], f"{r['train_cpu_s']:.0f}", f"{r['w']:g}", f"{r['fid']:.2f}",
          f"{r['kid']:.4f}", f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['class_accuracy']:.3f}",
          f"{r['sample_wall_s_per_1000']:.1f}"] for r in rows]
        + [["real vs real floor (train vs test)", "-", "-", "-", "-", f"{floor['fid']:.2f}", f"{floor['kid']:.4f}",
            f"{floor['precision']:.3f}", f"{floor['recall']:.3f}", "-", "-"]])
    print()
    ldm = next(r for r in rows if r["model"] == "latent-diffusion")
    print(f"latent diffusion: {ldm['stage1_steps']} first-stage steps; reconstruction MSE per pixel on the "
          f"test images {ldm['recon_mse']:.5f}")
    by = {(r["model"], r["w"]): r for r in rows}
    for w in GUIDANCES:
        _common.ratio(f"FID at w={w:g}, latent / pixel diffusion, {budget_s / 60:.3g} CPU-min each (lower is better)",
                      by["latent-diffusion", w]["fid"], by["diffusion", w]["fid"], "pixel diffusion")
    _common.ratio("sampling time per image at w=3, pixel / latent (above 1: latent is faster)",
                  by["diffusion", 3.0]["sample_wall_s_per_1000"], by["latent-diffusion", 3.0]["sample_wall_s_per_1000"],
                  "latent diffusion")
    plot(shown, classes, _common.out_path(OUT + ".png"), budget_s / 60)
    save({"benchmark": "latent_diffusion", "data": args.data, "budget_s": budget_s,
          "budget_clock": "time.process_time() per process", "n_eval": n, "sampler": "dpm++", "steps": args.steps,
          "seed": args.seed, "config": CONFIG, "train": TRAIN, "stage1_steps": args.stage1_steps, "floor": floor,
          "rows": rows, "model_dirs": {k: str(out / k) for k in KINDS}}, OUT + ".json")


if __name__ == "__main__":
    main()
