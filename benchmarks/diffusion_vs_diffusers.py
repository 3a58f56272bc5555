"""Diffusion sampling speed and agreement: genlab's samplers against diffusers' scheduler
loops, on the same network and the same starting noise (issue 17, speed part).

**What is measured.** For DDPM (50 steps, ``leading`` spacing, clip on), DDIM (50 steps,
eta 0, clip on; diffusers with ``use_clipped_model_output=True``, which is genlab's clipped
step) and DPM-Solver++(2M) (20 steps, ``linspace`` spacing, clip off: diffusers' DPM has no
``clip_sample``), ``--n`` images are sampled in batches of ``--batch`` under
``torch.no_grad()`` by

* genlab: ``genlab.models.diffusion.samplers.SAMPLERS[name](fn, model.schedule, x_T, ...)``;
* diffusers: ``DDPMScheduler`` / ``DDIMScheduler`` / ``DPMSolverMultistepScheduler``
  configured alike (the model's ``num_train_timesteps``, betas, ``beta_schedule``
  ``linear`` / ``squaredcos_cap_v2``, ``prediction_type``, spacing, clipping), driven by the
  usual ``set_timesteps`` + ``scheduler.step(...)`` loop.

Each side gets one warm-up, then ``--reps`` timed runs, alternating which side goes first;
the faster run counts. Reported per sampler: the wall time of each side, the speed ratio
(genlab images per second / diffusers images per second: >= 1 means genlab is at least
as fast), the max absolute difference of the two outputs (DDPM's noise comes from two
generators seeded alike, so it is compared too), and each loop's own overhead per step,
``(wall time - time inside the network) / network calls``, in microseconds.

**Why the network is identical.** Both loops call the very same Python object,
``fn = model.denoiser(ema=False)`` (genlab's U-Net, ``fn(x_t, t)`` with a ``(B,)`` float
step), wrapped in one timer; each side builds the ``t`` tensor it passes (part of its loop's
overhead). The starting noise is one ``torch.randn`` draw from a seeded generator, the
same tensor for both. So any time difference is the loops' own, and any output difference
is the samplers' arithmetic.

The network is a ``Diffusion`` U-Net for ``--shape`` images (default 1x28x28) trained
``--train-steps`` steps on Fashion-MNIST (not timed: a briefly trained network only makes
the outputs non-trivial; an untrained U-Net's zero-initialised output layer predicts 0).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_vs_diffusers.py               # 256 images, 2 threads
    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_vs_diffusers.py --n 512 --batch 128 --reps 3
    python benchmarks/diffusion_vs_diffusers.py --smoke     # 8x8 toy on synthetic data (test suite)

diffusers is optional: without it only genlab's side runs (ratios printed as skipped).
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import math
import os
import sys
import time

import torch

from genlab.data.dataset import Dataset
from genlab.models import Diffusion
from genlab.models.diffusion.samplers import SAMPLERS

#: genlab's prediction / schedule names -> diffusers'
PRED = {"epsilon": "epsilon", "v": "v_prediction", "x0": "sample"}
BETAS = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
#: sampler -> (diffusers scheduler class, spacing, clip, extra scheduler.step() arguments)
CASES = {
    "ddpm": ("DDPMScheduler", "leading", 1.0, {}),
    "ddim": ("DDIMScheduler", "leading", 1.0, {"eta": 0.0, "use_clipped_model_output": True}),
    "dpm++": ("DPMSolverMultistepScheduler", "linspace", None, {}),
}
TITLE = {"ddpm": "DDPM (clip)", "ddim": "DDIM (eta 0, clip)", "dpm++": "DPM-Solver++(2M) (no clip)"}


def shape_arg(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape wants C,H,W (e.g. 1,28,28), got {text!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--shape wants C,H,W (e.g. 1,28,28), got {text!r}")
    return shape


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timed:
    """``fn`` with the wall time spent inside it, and the number of calls, added up."""

    def __init__(self, fn, device: torch.device):
        self.fn, self.device, self.seconds, self.calls = fn, device, 0.0, 0

    def __call__(self, x, t, **cond):
        t0 = time.perf_counter()
        out = self.fn(x, t, **cond)
        sync(self.device)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


def genlab_run(name, fn, schedule, x_T, batch, steps, prediction, clip, spacing, seed):
    g = torch.Generator().manual_seed(seed)  # DDPM's noise (DDIM eta 0 and DPM++ draw none)
    return torch.cat([SAMPLERS[name](fn, schedule, x, steps=steps, prediction=prediction, clip=clip,
                                     spacing=spacing, generator=g) for x in x_T.split(batch)])


def diffusers_run(scheduler, fn, x_T, batch, steps, step_kw, seed):
    g = torch.Generator().manual_seed(seed)  # seeded as genlab's, drawn in the same order
    outs = []
    for x in x_T.split(batch):
        scheduler.set_timesteps(steps)  # also resets the multistep solver's state
        for t in scheduler.timesteps:
            out = fn(x, torch.full((len(x),), float(t), device=x.device))
            x = scheduler.step(out, t, x, generator=g, **step_kw).prev_sample
        outs.append(x)
    return torch.cat(outs)


def make_scheduler(diffusers, name: str, model: Diffusion):
    cls, spacing, clip, _ = CASES[name]
    c = model.config
    kw = dict(num_train_timesteps=c.timesteps, beta_start=c.beta_start, beta_end=c.beta_end,
              beta_schedule=BETAS[c.noise_schedule], prediction_type=PRED[c.prediction],
              timestep_spacing=spacing)
    if name != "dpm++":
        kw.update(clip_sample=clip is not None, clip_sample_range=clip or 1.0)
    return getattr(diffusers, cls)(**kw)


def train_data(args) -> Dataset:
    if args.data == "synthetic":  # seeded smooth blobs in [0, 1]: no data set needed
        g = torch.Generator().manual_seed(args.seed)
        x = torch.rand(256, args.shape[0], max(args.shape[1] // 2, 1), max(args.shape[2] // 2, 1), generator=g)
        x = torch.nn.functional.interpolate(x, size=args.shape[1:], mode="bilinear", align_corners=False)
        return Dataset(x=x.clamp(0, 1), name="synthetic")
    ds = _common.splits_or_skip(args.data)["train"]
    if tuple(ds.shape) != args.shape:
        sys.exit(f"{args.data} has images of shape {tuple(ds.shape)}, not --shape {args.shape}: "
                 f"pass --shape {','.join(map(str, ds.shape))} or --data synthetic")
    return ds


def build_model(args) -> tuple[Diffusion, float]:
    model_kw = {k: v for k, v in (("channels", args.channels), ("heads", args.heads)) if v is not None}
    m = Diffusion(data_shape=args.shape, noise_schedule=args.schedule, prediction=args.prediction,
                  ema_decay=0.0, **model_kw)
    t0 = time.perf_counter()
    if args.train_steps > 0:
        ds = train_data(args)
        epochs = math.ceil(args.train_steps * args.train_batch / len(ds)) + 1
        m.fit(ds, {"max_steps": args.train_steps, "epochs": epochs, "batch_size": args.train_batch,
                   "lr": args.lr, "val_fraction": 0, "seed": args.seed, "progress": False,
                   "threads": args.threads, "device": args.device})
    else:
        print("note: --train-steps 0: an untrained U-Net predicts 0 (zero-initialised output layer); "
              "the samples are trivial", flush=True)
        m.to(args.device)
    m.eval()
    return m, time.perf_counter() - t0


def run_case(name, steps, m, fn, x_T, args, diffusers) -> dict:
    _, spacing, clip, step_kw = CASES[name]
    dev = x_T.device
    sides = {"genlab": lambda f, k: genlab_run(name, f, m.schedule, x_T, args.batch, k, m.config.prediction,
                                                clip, spacing, args.seed + 1)}
    if diffusers is not None:
        sched = make_scheduler(diffusers, name, m)
        sides["diffusers"] = lambda f, k: diffusers_run(sched, f, x_T, args.batch, k, step_kw, args.seed + 1)
    with torch.no_grad():
        for side in sides.values():  # warm-up: 2 steps on every batch (allocator, caches, imports)
            side(fn, min(2, steps))
        runs: dict[str, list[dict]] = {s: [] for s in sides}
        outs: dict[str, torch.Tensor] = {}
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(sides)[::-1]  # alternate who goes first
            for s in order:
                timed = Timed(fn, dev)
                sync(dev)
                t0 = time.perf_counter()
                outs[s] = sides[s](timed, steps)
                sync(dev)
                runs[s].append({"seconds": time.perf_counter() - t0, "network_s": timed.seconds,
                                "calls": timed.calls})
    row = {"sampler": name, "steps": steps, "spacing": spacing, "clip": clip, "n": len(x_T), "batch": args.batch}
    for s, rs in runs.items():
        best = min(rs, key=lambda r: r["seconds"])
        row[s] = {"seconds": best["seconds"], "network_s": best["network_s"], "calls": best["calls"],
                  "overhead_us_per_step": (best["seconds"] - best["network_s"]) / best["calls"] * 1e6,
                  "images_per_s": len(x_T) / best["seconds"], "all_seconds": [r["seconds"] for r in rs]}
    if "diffusers" in outs:
        row["max_abs_diff"] = float((outs["genlab"].double() - outs["diffusers"].double()).abs().max())
        row["max_abs_output"] = float(outs["genlab"].abs().max())  # float32 rounding scales with it
        row["within_tol"] = row["max_abs_diff"] <= args.tol
        row["speed_ratio"] = row["genlab"]["images_per_s"] / row["diffusers"]["images_per_s"]
    row["sample_std"] = float(outs["genlab"].std())
    return row


def print_row(r: dict) -> None:
    g = r["genlab"]
    line = (f"{TITLE[r['sampler']]}, {r['steps']} steps: genlab {g['seconds']:.3f} s "
            f"(network {g['network_s']:.3f} s, loop {g['overhead_us_per_step']:.0f} us/step)")
    if "diffusers" in r:
        d = r["diffusers"]
        line += (f"; diffusers {d['seconds']:.3f} s (network {d['network_s']:.3f} s, loop "
                 f"{d['overhead_us_per_step']:.0f} us/step); max |diff| {r['max_abs_diff']:.2e}"
                 + ("" if r["within_tol"] else f" (ABOVE TOLERANCE; outputs up to {r['max_abs_output']:.3g}: "
                                              f"{r['max_abs_diff'] / r['max_abs_output']:.1e} relative)"))
    print(line, flush=True)


def table(rows: list[dict]) -> str:
    out = ["| sampler | steps | genlab s | diffusers s | speed ratio (genlab / diffusers images per s) "
           "| max abs diff | loop overhead per step, genlab / diffusers |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        g, d = r["genlab"], r.get("diffusers")
        out.append(f"| {TITLE[r['sampler']]} | {r['steps']} | {g['seconds']:.3f} | "
                   + (f"{d['seconds']:.3f} | {r['speed_ratio']:.3f} | {r['max_abs_diff']:.1e} | "
                      f"{g['overhead_us_per_step']:.0f} us / {d['overhead_us_per_step']:.0f} us |" if d else
                      f"- | - | - | {g['overhead_us_per_step']:.0f} us / - |"))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=shape_arg, default=(1, 28, 28), help="image shape C,H,W (default 1,28,28)")
    ap.add_argument("--data", default="fashion-mnist",
                    help="training data for the network: a data set name, or 'synthetic' (seeded blobs)")
    ap.add_argument("--train-steps", type=int, default=100, help="training steps (not timed; 0: untrained)")
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--schedule", choices=sorted(BETAS), default="linear")
    ap.add_argument("--prediction", choices=sorted(PRED), default="epsilon")
    ap.add_argument("--channels", type=int, default=None, help="U-Net channels (default: the model's)")
    ap.add_argument("--heads", type=int, default=None, help="U-Net attention heads (default: the model's)")
    ap.add_argument("--samplers", default="ddpm,ddim,dpm++", help="comma-separated, of ddpm, ddim, dpm++")
    ap.add_argument("--ddpm-steps", type=int, default=50)
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--dpm-steps", type=int, default=20)
    ap.add_argument("--n", type=int, default=256, help="images per sampler")
    ap.add_argument("--batch", type=int, default=256, help="images per sampling batch")
    ap.add_argument("--reps", type=int, default=2, help="timed runs per side (alternating; the fastest counts)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max abs difference expected between the two sides")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/out/diffusion_vs_diffusers.json")
    _common.add_smoke(ap)
    args = ap.parse_args()
    if _common.start_smoke(args):  # an 8x8 toy, 1 training step on synthetic data, 2 batches of 4
        args.shape, args.data, args.train_steps, args.train_batch = (1, 8, 8), "synthetic", 1, 32
        args.channels, args.heads, args.n, args.batch = 8, 2, 8, 4
        args.ddpm_steps = args.ddim_steps = args.dpm_steps = 4
        args.threads = min(args.threads, torch.get_num_threads())  # the smoke harness shares the cores
    names = [s.strip() for s in args.samplers.split(",") if s.strip()]
    if unknown := [s for s in names if s not in CASES]:
        sys.exit(f"--samplers: unknown {unknown}; choose from {', '.join(CASES)}")
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    print(f"machine: {_common.machine()}", flush=True)
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)
    diffusers = _common.optional("diffusers", "pip install diffusers")
    if args.schedule == "cosine" and args.prediction == "epsilon":
        print("note: cosine + epsilon unclipped from the last step (DPM-Solver++'s linspace) is rounding-bound: "
              "any two implementations agree only to ~1e-3 there (tests/models/test_diffusion_samplers.py)")

    m, train_s = build_model(args)
    fn = m.denoiser(ema=False)
    n_params = sum(p.numel() for p in m.net.parameters())
    print(f"network: Diffusion U-Net for {args.shape}, {n_params:,} parameters, {args.schedule} schedule, "
          f"{args.prediction} prediction; trained {args.train_steps} step{'' if args.train_steps == 1 else 's'} on {args.data} in {train_s:.1f} s "
          f"(not timed)", flush=True)
    x_T = torch.randn((args.n, *args.shape), generator=torch.Generator().manual_seed(args.seed)).to(m.device)

    steps = {"ddpm": args.ddpm_steps, "ddim": args.ddim_steps, "dpm++": args.dpm_steps}
    rows = []
    for name in names:
        r = run_case(name, steps[name], m, fn, x_T, args, diffusers)
        print_row(r)
        label = f"{name} sampling speed, {args.n} images, {r['steps']} steps (images/s, higher = faster)"
        if "diffusers" in r:
            _common.ratio(label, r["genlab"]["images_per_s"], r["diffusers"]["images_per_s"], "diffusers",
                          f"max |diff| {r['max_abs_diff']:.1e}")
        else:
            _common.ratio(label, r["genlab"]["images_per_s"], None, "diffusers", "not installed")
        rows.append(r)

    load1 = os.getloadavg()
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}"
          + (" (busy machine: mark these timings)" if load0[0] >= 1.0 or load1[0] > args.threads + 1.0 else ""))
    print(f"\n{args.n} images in batches of {args.batch}, {args.threads} threads, fastest of {args.reps} "
          f"alternating runs; loop overhead = (wall - network) / network calls\n")
    print(table(rows), flush=True)
    bad = [r["sampler"] for r in rows if r.get("within_tol") is False]
    if bad:
        print(f"\nnote: max |diff| above {args.tol:g} for {', '.join(bad)} (unclipped samples of a barely "
              "trained network reach |x| ~ 1/sqrt(abar_T): compare the relative difference)", flush=True)
    _common.save({"benchmark": "diffusion_vs_diffusers", "shape": list(args.shape), "n": args.n,
                  "batch": args.batch, "reps": args.reps, "threads": args.threads, "device": str(m.device),
                  "seed": args.seed, "data": args.data, "train_steps": args.train_steps,
                  "train_batch": args.train_batch, "train_seconds": train_s, "schedule": args.schedule,
                  "prediction": args.prediction, "network_parameters": n_params, "tol": args.tol,
                  "load_average_start": list(load0), "load_average_end": list(load1),
                  "diffusers": getattr(diffusers, "__version__", None), "results": rows}, args.out)


if __name__ == "__main__":
    main()
