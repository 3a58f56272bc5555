"""Sampling speed and agreement: genlab's samplers against diffusers' scheduler loops
on the same network and the same starting noise (issue 17).

The network is one genlab ``Diffusion`` U-Net (trained briefly on Fashion-MNIST, or an
8x8 toy with ``--smoke``); both loops call exactly the same ``fn(x_t, t)``, so the time
difference is the loops' own overhead. Each side runs twice, alternating, and the faster
run counts; the ratio is genlab's images per second over diffusers'.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_vs_diffusers.py --n 256
    python benchmarks/diffusion_vs_diffusers.py --smoke
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import os
import time

import torch

from genlab.models import Diffusion
from genlab.models.diffusion import samplers as S

PRED = {"epsilon": "epsilon", "v": "v_prediction", "x0": "sample"}
BETAS = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def timed(fn):
    calls = {"s": 0.0, "n": 0}

    def wrapped(x, t, **kw):
        t0 = time.perf_counter()
        out = fn(x, t, **kw)
        calls["s"] += time.perf_counter() - t0
        calls["n"] += 1
        return out

    return wrapped, calls


def diffusers_loop(scheduler, fn, x, steps, generator, **kw):
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        out = fn(x, torch.full((len(x),), float(t)))
        x = scheduler.step(out, t, x, generator=generator, **kw).prev_sample
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    _common.add_smoke(ap)
    args = ap.parse_args()
    smoke = _common.start_smoke(args)
    torch.set_num_threads(args.threads)
    print(f"load at start {os.getloadavg()[0]:.2f}", flush=True)
    if smoke:
        from genlab.data.datasets import load_splits

        data, cfg, n, train_steps = load_splits("digits")["train"], {"channels": 8, "heads": 2}, 8, 2
    else:
        from genlab.data.datasets import load_splits

        try:
            data = load_splits("fashion-mnist")["train"]
        except Exception as e:  # noqa: BLE001 - a data set that is not installed
            print(f"SMOKE-SKIP: fashion-mnist not available ({e})")
            return
        cfg, n, train_steps = {}, args.n, args.train_steps
    m = Diffusion(noise_schedule="linear", prediction="epsilon", **cfg).fit(
        data, {"max_steps": train_steps, "epochs": 10 ** 6, "batch_size": 64, "progress": False,
               "threads": args.threads})
    m.eval()
    net = m.denoiser()
    shape = (n, *m.config.data_shape)
    have = _common.have("diffusers")
    if have:
        import diffusers
    cases = [("ddim", 50, 1.0), ("dpm++", 20, None), ("ddpm", 50, 1.0)]
    rows = []
    for name, steps, clip in cases:
        steps = 3 if smoke else steps
        x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        res = {"g": [], "d": []}
        outs = {}
        for rep in range(2):
            with torch.no_grad():
                fn, c = timed(net)
                t0 = time.perf_counter()
                outs["g"] = S.SAMPLERS[name](fn, m.schedule, x_T.clone(), steps=steps, prediction="epsilon",
                                              clip=clip, generator=torch.Generator().manual_seed(1))
                res["g"].append((time.perf_counter() - t0, c["s"], c["n"]))
                if have:
                    kw = dict(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon")
                    if name == "ddim":
                        sched = diffusers.DDIMScheduler(**kw, clip_sample=True)
                    elif name == "dpm++":
                        sched = diffusers.DPMSolverMultistepScheduler(**kw)
                    else:
                        sched = diffusers.DDPMScheduler(**kw, clip_sample=True)
                    extra = {"use_clipped_model_output": True} if name == "ddim" else {}
                    fn, c = timed(net)
                    t0 = time.perf_counter()
                    outs["d"] = diffusers_loop(sched, fn, x_T.clone(), steps, torch.Generator().manual_seed(1), **extra)
                    res["d"].append((time.perf_counter() - t0, c["s"], c["n"]))
        g = min(res["g"])
        row = {"sampler": name, "steps": steps, "n": n, "genlab_s": g[0], "genlab_overhead_us_per_step": (g[0] - g[1]) / g[2] * 1e6}
        if have:
            d = min(res["d"])
            row.update(diffusers_s=d[0], diffusers_overhead_us_per_step=(d[0] - d[1]) / d[2] * 1e6,
                       max_abs_diff=float((outs["g"] - outs["d"]).abs().max()))
            _common.ratio(f"{name}-{steps} sampling speed, {n} images (images/s)", n / g[0], n / d[0], "diffusers",
                          f"max |diff| {row['max_abs_diff']:.1e}")
        else:
            _common.ratio(f"{name}-{steps} sampling speed, {n} images (images/s)", n / g[0], None, "diffusers",
                          "not installed")
        rows.append(row)
    print(f"load at end {os.getloadavg()[0]:.2f}", flush=True)
    print("\n| sampler | steps | genlab s | diffusers s | ratio | max abs diff | overhead µs/step genlab / diffusers |"
          "\n|---|---|---|---|---|---|---|")
    for r in rows:
        if "diffusers_s" in r:
            print(f"| {r['sampler']} | {r['steps']} | {r['genlab_s']:.2f} | {r['diffusers_s']:.2f} | "
                  f"{r['diffusers_s'] / r['genlab_s']:.3f} | {r['max_abs_diff']:.1e} | "
                  f"{r['genlab_overhead_us_per_step']:.0f} / {r['diffusers_overhead_us_per_step']:.0f} |")
    _common.save({"rows": rows, "threads": args.threads, "train_steps": train_steps},
                 "benchmarks/out/diffusion_vs_diffusers.json")


if __name__ == "__main__":
    main()
