"""FID against sampler steps for ONE trained class-conditional Fashion-MNIST diffusion model
(issue 17).

**The model.** The recommended path reuses the final model of the budget benchmark:
``diffusion_vs_gan_budget.py`` saves it to
``benchmarks/out/diffusion_vs_gan_budget/diffusion``. ``--model auto`` (the default) takes
that folder when it exists. ``--model PATH`` (or ``--run PATH``) takes any saved model
folder or run folder. ``--train``, or a missing folder, trains one here instead: the same
settings as the budget benchmark, for ``--budget`` CPU-minutes (default 15) of this
process's CPU time at one thread. That model is saved to
``benchmarks/out/diffusion_sampler_steps/model``.

**The sampler settings.** Each one draws the same ``--n`` samples (default 1,000): classes
``0..9`` cycling, the same seed, guidance ``--guidance`` (default 1: the plain conditional
model). The settings are DDIM 10/20/50/100, DPM-Solver++(2M) 10/20, Heun 18 (Karras et
al.: 35 network calls) and DDPM 1000.

**What is reported.** For each setting:
* against as many test images, in the shipped fashion-mnist judge's feature space: FID,
  KID, precision/recall and class accuracy (judge argmax = the requested class);
* the network calls per sample, counted by a hook on the network;
* the sampling time per 1,000 images, in seconds of wall clock and of CPU, at
  ``--threads`` (default 2).

The real-vs-real floor is also printed. At w != 1 each call runs the conditional and the
unconditional half as one doubled batch, so it costs about twice as much. The ratio line
compares DPM-Solver++ 20 with DDIM 50.

**What it writes.** A JSON and a PNG (FID against network calls, one point per setting)
under ``benchmarks/out/``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_vs_gan_budget.py   # first: trains and saves the model
    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_sampler_steps.py --n 1000 --guidance 1
    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_sampler_steps.py --train --budget 15   # standalone
    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_sampler_steps.py --settings ddpm:1000 --merge

``--merge`` keeps the last run's rows for the settings not run now (when it scored the same
model with the same ``--n``, ``--guidance`` and ``--seed``; otherwise it stops and says
which differ), so one setting can be added or re-measured alone; the table, JSON and
picture then hold every row, the new ones marked ``"measured": "now"`` in the JSON.
    python benchmarks/diffusion_sampler_steps.py --smoke     # a tiny model trained for 3 CPU-s, 10 samples, 10 steps

**Run time: an estimate, not a measurement.** A probe of the full-size U-Net (32 channels)
on the shared 2-core AMD EPYC machine gave about 3.5 ms per image per network call at one
thread (about 2 ms of wall clock at two threads). The eight settings make 1,245 calls per
sample, 1,000 of them DDPM's. So 1,000 samples cost about 73 CPU-minutes, about 40-45 min
of wall clock at 2 threads on a quiet machine. Without DDPM-1000
(``--settings ddim:10,ddim:20,ddim:50,ddim:100,dpm++:10,dpm++:20,heun:18``) it is about
10 min. ``--guidance 3`` about doubles both. ``--train`` adds its budget (15 min).
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import json
import os
import time
from pathlib import Path

import torch
from _common import save
from diffusion_vs_gan_budget import (DIFFUSION_CONFIG, DIFFUSION_TRAIN, diffusion_samples, score, train_model,
                                     write_figure)
from diffusion_vs_gan_budget import OUT as BUDGET_OUT

import genlab
from genlab.metrics.judges import judge_for
from genlab.models.diffusion.samplers import network_calls

SETTINGS = "ddim:10,ddim:20,ddim:50,ddim:100,dpm++:10,dpm++:20,heun:18,ddpm:1000"
NAMES = {"ddim": "DDIM", "dpm++": "DPM-Solver++", "heun": "Heun (Karras)", "ddpm": "DDPM", "euler": "Euler (Karras)"}


def parse_settings(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        name, _, steps = item.strip().partition(":")
        if name not in NAMES or not steps.isdigit():
            raise SystemExit(f"--settings: {item!r} is not SAMPLER:STEPS with SAMPLER one of {', '.join(NAMES)}")
        out.append((name, int(steps)))
    return out


def get_model(args, train, smoke: bool):
    """``(model, where it came from)``: loaded (``--model``) or trained here."""
    path = None if args.train else (Path(BUDGET_OUT) / "diffusion" if args.model == "auto" else Path(args.model))
    if smoke:
        path = None  # a smoke run trains its own tiny model (and reads nothing from benchmarks/out/)
    if path is not None and path.exists():
        print(f"loading the trained model from {path}", flush=True)
        return genlab.load(path), {"source": str(path)}
    if path is not None and args.model != "auto":
        raise SystemExit(f"--model {path}: no such model or run folder")
    budget_s = 3.0 if smoke else 60 * args.budget
    print(f"training a class-conditional diffusion for {budget_s:g} CPU-s of this process (1 thread)"
          + ("" if smoke else f"; no model at {Path(BUDGET_OUT) / 'diffusion'} (run diffusion_vs_gan_budget.py "
                              "first to reuse its model)"), flush=True)
    model, cb = train_model("diffusion", train, [budget_s], tiny=smoke, heartbeat_s=max(60.0, budget_s / 10))
    where = _common.out_path("benchmarks/out/diffusion_sampler_steps/model")
    model.save(where)
    print(f"saved the model to {where}", flush=True)
    snap = cb.snapshots[-1]
    return model, {"source": "trained here", "saved_to": str(where), "budget_s": budget_s, "steps": snap["step"],
                   "train_cpu_s": snap["cpu_s"], "config": DIFFUSION_CONFIG, "train": DIFFUSION_TRAIN}


def merged_rows(rows: list[dict], path: Path, *, n: int, guidance: float, seed: int, source: dict) -> list[dict]:
    """``rows`` with the rows of the JSON at ``path`` for the settings ``rows`` lacks, when
    that run scored the same model (``source``) with the same ``n``, ``guidance`` and
    ``seed``; ordered by network calls. Anything else stops with the reason."""
    if not path.exists():
        raise SystemExit(f"--merge: no earlier run at {path}")
    old = json.loads(path.read_text())
    same = {"n": n, "guidance": guidance, "seed": seed, "model": source}
    differ = [k for k, v in same.items() if old.get(k) != v]
    if differ:
        raise SystemExit(f"--merge: the run in {path} differs in {', '.join(differ)} "
                         f"({', '.join(f'{k}={old.get(k)!r}' for k in differ)}); not merged")
    new = {(r["sampler"], r["steps"]) for r in rows}
    kept = [r for r in old["rows"] if (r["sampler"], r["steps"]) not in new]
    print(f"--merge: kept {len(kept)} row(s) of {path} ({old.get('date', 'undated')})", flush=True)
    return sorted(kept + [{**r, "measured": "now"} for r in rows], key=lambda r: (r["network_calls"], r["sampler"]))


def plot(rows: list[dict], floor: float, guidance: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        pts = sorted((r["network_calls"], r["fid"], r["steps"]) for r in rows if r["sampler"] == sampler)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=NAMES[sampler])
        for c, f, steps in pts:
            ax.annotate(f"{steps} steps", (c, f), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axhline(floor, color="grey", ls="--", lw=1, label="real vs real floor")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("network calls per sample (log)")
    ax.set_ylabel("FID (judge:fashion-mnist), lower is better")
    ax.set_title(f"one class-conditional Fashion-MNIST diffusion model, guidance w={guidance:g}", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    write_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", "--run", dest="model", default="auto",
                    help="a saved model folder or run folder (auto: the budget benchmark's, else train)")
    ap.add_argument("--train", action="store_true", help="train a model here even if one is saved")
    ap.add_argument("--budget", type=float, default=15, help="CPU-minutes of training when training here")
    ap.add_argument("--n", type=int, default=1000, help="samples (and test images) per setting")
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--settings", default=SETTINGS, help="SAMPLER:STEPS, comma-separated")
    ap.add_argument("--threads", type=int, default=2, help="threads for sampling")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows of the last run's JSON for settings not run now (same model, --n, "
                         "--guidance and --seed), so that one setting can be added or re-measured alone")
    _common.add_smoke(ap)
    args = ap.parse_args()
    smoke = _common.start_smoke(args)
    settings = parse_settings(args.settings)
    if smoke:  # DDPM's 1,000 calls would be most of a smoke run: the same code paths at 10 steps
        settings = [(s, min(k, 10)) for s, k in settings]
    splits = _common.splits_or_skip("fashion-mnist", **({"limit": 512} if smoke else {}))
    train, test = splits["train"], splits["test"]
    model, source = get_model(args, train, smoke)
    torch.set_num_threads(1 if smoke else max(1, min(args.threads, os.cpu_count() or 1)))
    judge = judge_for("fashion-mnist")
    n = min(10 if smoke else args.n, len(test))
    real, y = test.x[:n], torch.arange(n) % 10
    floor = score(train.x[:n], None, real, judge)
    calls = [0]
    net = model.net_ema if model.net_ema is not None else model.net
    hook = net.register_forward_pre_hook(lambda mod, inp: calls.__setitem__(0, calls[0] + 1))
    rows = []
    print(f"load {os.getloadavg()[0]:.2f}; {n} samples per setting, guidance w={args.guidance:g}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    for sampler, steps in settings:
        calls[0] = 0
        t0, c0 = time.perf_counter(), time.process_time()
        x = diffusion_samples(model, y, guidance=args.guidance, sampler=sampler, steps=steps, seed=args.seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        chunks = -(-n // 100)  # diffusion_samples draws 100 at a time
        per_sample = calls[0] / chunks
        expected = network_calls(sampler, steps, model.config.timesteps)
        if per_sample != expected:
            print(f"note: {sampler}-{steps} made {per_sample:g} network calls per sample, expected {expected}")
        row = {"sampler": sampler, "steps": steps, "setting": f"{NAMES[sampler]} {steps}",
               "network_calls": per_sample, "wall_s_per_1000": round(wall * 1000 / n, 2),
               "cpu_s_per_1000": round(cpu * 1000 / n, 2), **score(x, y, real, judge)}
        rows.append(row)
        print(f"  {row['setting']}: {per_sample:g} calls, {row['wall_s_per_1000']:.1f} s per 1,000 images, "
              f"FID {row['fid']:.2f}, KID {row['kid']:.4f}, class acc {row['class_accuracy']:.3f}", flush=True)
    hook.remove()
    stem = "benchmarks/out/diffusion_sampler_steps"
    if args.merge:
        rows = merged_rows(rows, _common.out_path(stem + ".json"), n=n, guidance=args.guidance, seed=args.seed,
                           source=source)
    print(f"\n{n} samples per setting (classes 0..9 cycling, seed {args.seed}, guidance w={args.guidance:g}) vs {n} "
          f"test images, feature space {judge.feature_space}; times at {torch.get_num_threads()} thread(s), "
          f"load {os.getloadavg()[0]:.2f} at the end; model: {source['source']}\n")
    print("| sampler | steps | network calls | s / 1,000 images (wall) | CPU-s / 1,000 | FID | KID | precision | "
          "recall | class acc. |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {NAMES[r['sampler']]} | {r['steps']} | {r['network_calls']:g} | {r['wall_s_per_1000']:.1f} | "
              f"{r['cpu_s_per_1000']:.1f} | {r['fid']:.2f} | {r['kid']:.4f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['class_accuracy']:.3f} |")
    print(f"| real vs real floor (train vs test) | - | - | - | - | {floor['fid']:.2f} | {floor['kid']:.4f} | "
          f"{floor['precision']:.3f} | {floor['recall']:.3f} | - |\n")

    def fid_of(sampler, steps):
        return next((r["fid"] for r in rows if (r["sampler"], r["steps"]) == (sampler, steps)), None)

    dpm, ddim = fid_of("dpm++", 20), fid_of("ddim", 50)
    if dpm is None:
        print("ratio FID of DPM-Solver++ 20 vs DDIM 50: genlab nan / DDIM-50 skipped (dpm++:20 not in --settings)")
    else:
        _common.ratio(f"FID of DPM-Solver++ 20 steps vs DDIM 50 steps (w={args.guidance:g}, lower is better)", dpm,
                      ddim, "DDIM-50", "" if ddim is not None else "ddim:50 not in --settings")
    plot(rows, floor["fid"], args.guidance, _common.out_path(stem + ".png"))
    save({"benchmark": "diffusion_sampler_steps", "n": n, "guidance": args.guidance, "seed": args.seed,
          "threads": torch.get_num_threads(), "model": source, "floor": floor, "rows": rows}, stem + ".json")


if __name__ == "__main__":
    main()
