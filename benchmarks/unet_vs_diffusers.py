"""genlab's diffusion U-Net against diffusers' ``UNet2DModel`` at equal CPU budget
(issue 17, "Equal to diffusers": the U-Net part).

**What is compared.** Two denoising networks on class-unconditional Fashion-MNIST
(``--data``; digits for ``--smoke``), everything else the same:

* genlab: ``Diffusion`` with the settings of ``diffusion_vs_gan_budget.py``
  (``DIFFUSION_CONFIG``: cosine schedule, v-prediction, U-Net with 32 channels, EMA 0.999)
  but ``num_classes=0``, trained by genlab's own ``fit`` (``DIFFUSION_TRAIN``: Adam, lr
  1e-3, batch 128, seed 0).
* diffusers: a ``UNet2DModel`` laid out as genlab's U-Net is (``diffusers_config``): the
  same channels per level (28x28: 32, 64, 64), residual blocks per level, attention at the
  same levels and in the middle with the same head width, time embedding of 4x the first
  width, scale-and-shift time modulation (``resnet_time_scale_shift="scale_shift"``).
  On 28x28 that is 1,191,105 parameters against genlab's 1,191,233 (diffusers' default
  additive modulation: 1,112,801, -6.6%). Both counts and their ratio are printed.
  Differences left: diffusers uses one GroupNorm group count for every width (8; genlab
  about 4 channels a group), its output convolution is not zero-initialised, and it
  up-samples by interpolation + convolution at its own block boundaries.

**The same training.** The diffusers network is trained by a bare PyTorch loop that copies
genlab's step: the same optimizer (``genlab.train.schedule.make_optimizer`` on the same
options), the same batches (genlab's ``epoch_order`` / ``batch_rows``: the same rows in
the same order), images as ``2x - 1``, ``t`` uniform in ``0..T-1`` and Gaussian noise drawn
as genlab draws them (from torch's generator seeded alike, though not the same draws: the
two initialisations consume different numbers), genlab's ``NoiseSchedule`` for ``x_t``
and the v target, the plain per-example MSE, and the EMA of the weights with genlab's
warm-up (``ema_update`` / ``ema_decay_at``). genlab's loop also checks that the loss and
the gradients are finite and logs every 10 steps; that cost is in its steps per CPU-second.

**The budget.** Each model trains in its own process at one thread, side by side, until
its own process CPU time (``time.process_time()``, counted from the start of its training
loop) passes ``--budget-min`` CPU-minutes. The stopping rule is the same object for both
(``diffusion_vs_gan_budget.CpuBudget``). A busy machine slows the run down but does not
change what each model gets. Steps per CPU-second are reported, so the budget shows which
network trains faster as well as which one learns more per step.

**Scoring.** After training, in this process (``--eval-threads``, not part of any budget):
``--n-eval`` samples per model from the EMA weights, from ONE starting noise shared by both,
by genlab's DPM-Solver++(2M) with ``--steps`` steps (20), clip on, called on each network
as a callable ``eps(x_t, t)`` (diffusers: ``unet(x_t, t).sample``). FID, KID and
precision/recall against as many real test images in the shipped judge's feature space
(``judge_for(--data)``), beside the real-vs-real floor (training vs test images),
through ``diffusion_vs_gan_budget.score``. Printed: a table and ratio lines (FID, KID,
training steps per CPU-second; below 1 for FID/KID and above 1 for speed favour genlab).

**What it writes.** ``benchmarks/out/unet_vs_diffusers.json``, ``.png`` (64 samples per
model side by side) and the two trained models under ``benchmarks/out/unet_vs_diffusers/``
(genlab's model folder, diffusers' ``save_pretrained`` folder). diffusers runs offline
(``HF_HUB_OFFLINE=1``): nothing is downloaded. Without diffusers only genlab's side runs.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/unet_vs_diffusers.py --budget-min 15 --n-eval 1000
    python benchmarks/unet_vs_diffusers.py --smoke     # digits, tiny U-Nets, 1 CPU-s each, 20 samples

**Run time, measured** (2026-12-04, quiet 2-core AMD EPYC machine, ``--budget-min 15
--n-eval 1000``): training 943 s of wall clock (475 and 482 steps, 0.527 and 0.535 steps
per CPU-second), sampling 66 s and 68 s at 2 threads, in all 17 min from start to the
JSON. Each extra budget minute adds about one; a busy machine takes longer (the budget is
CPU time). A check at ``--budget-min 0.1 --n-eval 50`` took 51 s at load 5-6;
``--smoke`` about 18 s.
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import atexit
import copy
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # diffusers builds its network from a config: no hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch
from _common import save
from diffusion_vs_gan_budget import (DIFFUSION_CONFIG, DIFFUSION_TRAIN, SAMPLE_CHUNK, TINY, CpuBudget, budget_label, score,
                                     write_figure)

import genlab
from genlab.data.datasets import load_splits
from genlab.metrics.judges import judge_for
from genlab.models import Diffusion
from genlab.models.diffusion.samplers import SAMPLERS
from genlab.models.diffusion.schedule import NoiseSchedule
from genlab.models.diffusion.unet import groups_for, unet_levels
from genlab.nn import ema_decay_at, ema_update
from genlab.train.config import TrainConfig
from genlab.train.schedule import make_optimizer
from genlab.train.trainer import batch_rows, epoch_order, rows_of

CONFIG = {**DIFFUSION_CONFIG, "num_classes": 0}  # class-unconditional
OUT = "benchmarks/out/unet_vs_diffusers"
SIDES = ("genlab", "diffusers")


def genlab_model(shape, tiny: bool) -> Diffusion:
    return Diffusion(data_shape=tuple(shape), **{**CONFIG, **(TINY["diffusion"] if tiny else {})})


def diffusers_config(c, shape) -> dict:
    """``UNet2DModel`` keywords for the layout of genlab's U-Net of config ``c`` on images of
    ``shape`` (``genlab.models.diffusion.unet.UNet``: its levels, widths, blocks, attention)."""
    c_in, h, w = (int(s) for s in shape)
    n = unet_levels((h, w))
    mult = tuple(c.channel_mult) or (1, 2, 2, 2)[:n]
    mult = (mult + (mult[-1],) * n)[:n]
    chs = [c.channels * m for m in mult]
    attn = [i > 0 and min(h, w) // 2 ** i <= c.attention_res for i in range(n)]
    head_width = next((ch for ch, a in zip(reversed(chs), reversed(attn)) if a), chs[-1]) // c.heads
    return {"sample_size": (h, w), "in_channels": c_in, "out_channels": c_in, "block_out_channels": tuple(chs),
            "layers_per_block": c.blocks,
            "down_block_types": tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
            "up_block_types": tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
            "add_attention": c.attention_res > 0, "attention_head_dim": head_width,
            "norm_num_groups": groups_for(chs[0]), "resnet_time_scale_shift": "scale_shift",
            "dropout": c.dropout}


class BareLoop:
    """What ``CpuBudget`` reads of a trainer, for the bare diffusers loop."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.step, self.should_stop = model, 0, False


def train_diffusers(train, budget_s: float, c, *, heartbeat_s: float):
    """A bare PyTorch loop doing genlab's diffusion step on a ``UNet2DModel`` of genlab's
    layout for config ``c``; returns ``(network, its EMA, the CpuBudget)``."""
    from diffusers import UNet2DModel

    opts = TrainConfig(**{**DIFFUSION_TRAIN, "max_steps": 10 ** 9, "epochs": 10 ** 6, "threads": 1})
    torch.manual_seed(opts.seed)  # as genlab's fit does before drawing the weights
    net = UNet2DModel(**diffusers_config(c, train.shape))
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = make_optimizer(net, opts)
    sched = NoiseSchedule(c.noise_schedule, c.timesteps, beta_start=c.beta_start, beta_end=c.beta_end)
    per_epoch = math.ceil(len(train) / opts.batch_size)
    loop = BareLoop(torch.nn.ModuleDict({"net": net, "ema": ema}))
    cb = CpuBudget([budget_s], name="diffusers", heartbeat_s=heartbeat_s)
    net.train()
    order = None
    cb.on_fit_start(loop)
    while not loop.should_stop:
        epoch, b = divmod(loop.step, per_epoch)
        if b == 0 or order is None:
            order = epoch_order(len(train), opts.seed, epoch)
        x0 = rows_of(train, batch_rows(order, b, opts.batch_size))["x"] * 2 - 1
        t = torch.randint(0, c.timesteps, (len(x0),))
        noise = torch.randn_like(x0)
        out = net(sched.add_noise(x0, noise, t), t.float()).sample
        loss = (out.float() - sched.target(x0, noise, t, c.prediction)).pow(2).flatten(1).mean(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loop.step += 1
        ema_update(ema, net, ema_decay_at(loop.step, c.ema_decay))
        cb.on_step_end(loop, {"loss": float(loss.detach())})
    return net, ema, cb


def worker(args) -> None:
    """One side's training process: trains to ``--budget-s`` of its own CPU time at one
    thread, saves its model to ``--model-dir`` and a JSON of what it reached to ``--work``."""
    torch.set_num_threads(1)
    train = load_splits(args.data)["train"]
    budget_s, beat = float(args.budget_s), max(60.0, float(args.budget_s) / 12)
    c0 = time.process_time()
    if args.worker == "genlab":
        model = genlab_model(train.shape, args.tiny)
        cb = CpuBudget([budget_s], name="genlab", heartbeat_s=beat)
        model.fit(train, {"max_steps": 10 ** 9, "epochs": 10 ** 6, "threads": 1, "progress": False,
                          **DIFFUSION_TRAIN}, callbacks=[cb])
        params = sum(p.numel() for p in model.net.parameters())
        model.save(args.model_dir)
    else:
        c = genlab_model(train.shape, args.tiny).config
        net, ema, cb = train_diffusers(train, budget_s, c, heartbeat_s=beat)
        params = sum(p.numel() for p in net.parameters())
        ema.save_pretrained(args.model_dir)
    cpu = time.process_time() - c0
    snap = cb.snapshots[-1]
    info = {"side": args.worker, "steps": snap["step"], "train_cpu_s": snap["cpu_s"], "train_wall_s": snap["wall_s"],
            "steps_per_cpu_s": snap["step"] / max(snap["cpu_s"], 1e-9), "process_cpu_s": round(cpu, 1),
            "params": params, "threads": torch.get_num_threads()}
    (Path(args.work) / f"{args.worker}.json").write_text(json.dumps(info, indent=1))
    print(f"[{args.worker}] done: {info['steps']} steps in {info['train_cpu_s']:.1f} CPU-s "
          f"({info['steps_per_cpu_s']:.3f} steps per CPU-s); saved to {args.model_dir}", flush=True)


def train_side_by_side(sides, args, budget_s: float, work: Path, dirs: dict, tiny: bool) -> dict:
    """Start one training process per side of ``sides`` at once, wait for all; their JSONs."""
    base = [sys.executable, os.path.abspath(__file__), "--data", args.data, "--work", str(work),
            "--budget-s", f"{budget_s:g}"] + (["--tiny"] if tiny else [])
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    procs = [(s, subprocess.Popen(base + ["--worker", s, "--model-dir", str(dirs[s])], env=env)) for s in sides]
    failed = [f"{s} (rc {rc})" for s, rc in ((s, p.wait()) for s, p in procs) if rc]
    if failed:
        sys.exit(f"training failed: {', '.join(failed)}")
    return {s: json.loads((work / f"{s}.json").read_text()) for s in sides}


def sample_with(fn, schedule, x_T: torch.Tensor, kw: dict, name: str) -> tuple[torch.Tensor, dict]:
    """``SAMPLERS[name](fn, schedule, ...)`` from ``x_T``, ``SAMPLE_CHUNK`` at a time, with
    its wall and CPU seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        x = torch.cat([SAMPLERS[name](fn, schedule, xc, **kw) for xc in x_T.split(SAMPLE_CHUNK)])
    return ((x + 1) / 2).clamp(0, 1), {"sample_wall_s": round(time.perf_counter() - t0, 1),
                                       "sample_cpu_s": round(time.process_time() - c0, 1)}


def plot_samples(panels: dict[str, torch.Tensor], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from genlab.imaging import image_grid

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 4.0), squeeze=False)
    for ax, (name, x) in zip(axes[0], panels.items()):
        ax.imshow(np.asarray(image_grid(x[:64], nrow=8, scale=1)), cmap="gray", vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    write_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-min", type=float, default=15, help="training budget per model, CPU-minutes")
    ap.add_argument("--data", default="fashion-mnist", help="image data set with a shipped judge")
    ap.add_argument("--n-eval", type=int, default=1000, help="samples (and test images) per model")
    ap.add_argument("--steps", type=int, default=20, help="DPM-Solver++ steps")
    ap.add_argument("--eval-threads", type=int, default=2, help="threads for the evaluation (after training)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the starting noise")
    ap.add_argument("--out", default=OUT, help="folder for the two trained models")
    for flag, kw in (("--worker", {"choices": SIDES}), ("--work", {}), ("--model-dir", {}), ("--budget-s", {}),
                     ("--tiny", {"action": "store_true"})):  # a training process's own (train_side_by_side's)
        ap.add_argument(flag, help=argparse.SUPPRESS, **kw)
    _common.add_smoke(ap)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    smoke = _common.start_smoke(args)
    if smoke:
        args.data = "digits"
    budget_s = 1.0 if smoke else 60 * args.budget_min
    n_eval = 20 if smoke else args.n_eval
    splits = _common.splits_or_skip(args.data)
    train, test = splits["train"], splits["test"]
    shape = tuple(train.shape)
    diffusers = _common.optional("diffusers", "pip install diffusers")
    sides = SIDES if diffusers is not None else SIDES[:1]

    g_model = genlab_model(shape, smoke)
    g_params = sum(p.numel() for p in g_model.net.parameters())
    d_kw = diffusers_config(g_model.config, shape)
    print(f"genlab U-Net: {g_params:,} parameters ({args.data}, {shape})", flush=True)
    d_params = None
    if diffusers is not None:
        d_params = sum(p.numel() for p in diffusers.UNet2DModel(**d_kw).parameters())
        print(f"diffusers UNet2DModel: {d_params:,} parameters ({d_params / g_params - 1:+.2%}), {d_kw}", flush=True)
        if abs(d_params / g_params - 1) > 0.15:
            print("note: the parameter counts differ by more than 15%", flush=True)

    out = _common.out_path(args.out)
    dirs = {s: out / s for s in SIDES}
    work = Path(tempfile.mkdtemp(prefix="genlab-uvd-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    print(f"training {' and '.join(sides)} side by side, one process and one thread each, to "
          f"{budget_label(budget_s)} of each process's own CPU time; load {os.getloadavg()[0]:.2f}", flush=True)
    t0 = time.perf_counter()
    infos = train_side_by_side(sides, args, budget_s, work, dirs, smoke)
    train_wall = time.perf_counter() - t0
    print(f"training done in {train_wall:.0f} s wall; load {os.getloadavg()[0]:.2f}", flush=True)

    torch.set_num_threads(1 if smoke else max(1, min(args.eval_threads, os.cpu_count() or 1)))
    judge = judge_for(args.data)
    n = min(n_eval, len(test))
    real = test.x[:n]
    floor = score(train.x[:n], None, real, judge)
    model = genlab.load(dirs["genlab"])
    model.eval()
    name, g_fn, kw = model.sampling_setup(n, sampler="dpm++", steps=args.steps)
    x_T = torch.randn((n, *shape), generator=torch.Generator().manual_seed(args.seed))
    fns = {"genlab": g_fn}
    if diffusers is not None:
        unet = diffusers.UNet2DModel.from_pretrained(dirs["diffusers"], low_cpu_mem_usage=False).eval()
        fns["diffusers"] = lambda x, t: unet(x, t).sample
    rows, panels = [], {}
    for side, fn in fns.items():
        x, cost = sample_with(fn, model.schedule, x_T, kw, name)
        info = infos[side]
        rows.append({"model": side, **info, **cost, **score(x, None, real, judge)})
        panels[f"{side} ({info['params']:,} params, {info['steps']} steps)"] = x
        print(f"[{side}] FID {rows[-1]['fid']:.2f}, KID {rows[-1]['kid']:.4f} ({cost['sample_wall_s']:.1f} s "
              f"to sample)", flush=True)

    print(f"\n### {args.data}, class-unconditional: {budget_label(budget_s)} per model (one thread, process CPU time)\n")
    print("| U-Net | parameters | steps | train CPU-s | steps / CPU-s | FID | KID | precision | recall | "
          "sampling s (wall) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['steps']} | {r['train_cpu_s']:.0f} | {r['steps_per_cpu_s']:.3f} | "
              f"{r['fid']:.2f} | {r['kid']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['sample_wall_s']:.1f} |")
    print(f"| real vs real floor (train vs test) | - | - | - | - | {floor['fid']:.2f} | {floor['kid']:.4f} | "
          f"{floor['precision']:.3f} | {floor['recall']:.3f} | - |")
    print(f"\n{n} samples per model from one starting noise (seed {args.seed}) by DPM-Solver++ {args.steps} steps "
          f"(clip {kw.get('clip')}), EMA weights, vs {n} test images in {judge.feature_space}; "
          f"{torch.get_num_threads()} thread(s) for the evaluation\n")
    g = rows[0]
    d = rows[1] if len(rows) > 1 else None
    why = "diffusers not installed"
    budget = budget_label(budget_s)
    for key, label in (("fid", "FID"), ("kid", "KID")):
        _common.ratio(f"{label} at {budget}, DPM++-{args.steps} (lower is better)", g[key],
                      d[key] if d else None, "diffusers UNet2DModel", why if d is None else "")
    _common.ratio("training steps per CPU-second, batch 128, one thread (higher is faster)", g["steps_per_cpu_s"],
                  d["steps_per_cpu_s"] if d else None, "diffusers UNet2DModel", why if d is None else "")
    stem = "benchmarks/out/unet_vs_diffusers"
    plot_samples(panels, f"{args.data}, unconditional, {budget} each, DPM-Solver++ {args.steps}, same noise",
                 _common.out_path(stem + ".png"))
    save({"benchmark": "unet_vs_diffusers", "data": args.data, "shape": list(shape), "budget_s": budget_s,
          "budget_clock": "time.process_time() per process", "n_eval": n, "sampler": name, "sampler_kw": kw,
          "seed": args.seed, "config": CONFIG, "train": DIFFUSION_TRAIN,
          "params": {"genlab": g_params, "diffusers": d_params},
          "diffusers_config": {k: list(v) if isinstance(v, tuple) else v for k, v in d_kw.items()},
          "diffusers": getattr(diffusers, "__version__", None), "train_wall_s": round(train_wall, 1),
          "floor": floor, "rows": rows, "model_dirs": {k: str(v) for k, v in dirs.items()}}, stem + ".json")


if __name__ == "__main__":
    main()
