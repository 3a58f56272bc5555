"""Diffusion vs the best GAN on Fashion-MNIST under CPU budgets (issue 17, quality on real
images under a CPU budget).

**The two models.**
* genlab's class-conditional ``Diffusion(num_classes=-1)`` with the defaults
  ``diffusion_defaults.py`` chose (cosine schedule, v-prediction, U-Net with 32 channels,
  label dropout 0.1 for guidance, EMA 0.999), trained at batch 128 and lr 1e-3 (the setting
  ``diffusion_defaults.py`` measured).
* The best GAN of ``gan_fashion_mnist.py`` (RESULTS.md, 900 s table: best FID, KID and
  precision, and the only class-conditional one). That is "conditional (hinge + SN,
  projection)", with its settings imported unchanged: batch 64, EMA of G 0.999, Adam at
  lr_g 1e-4 and lr_d 4e-4.

**The budget.**
* Each model trains in its own process at one thread (``torch.set_num_threads(1)``,
  ``OMP_WAIT_POLICY=PASSIVE``), so the two train side by side.
* A model's budget is its own process's CPU time (``time.process_time()``). A machine
  shared with other work then slows the run down but does not change what each model gets.
* The trainer's ``max_steps`` is effectively unbounded. A callback checks the process's CPU
  time after every step, keeps a copy of the model's state (the EMA weights are what both
  models sample from) when each budget is passed, and stops after the last one.
* So the budgets (``--budgets 5,15,30`` CPU-minutes) are points along ONE training run per
  model. The learning rates stay constant as in ``gan_fashion_mnist.py`` (an anneal toward
  the last budget would make the earlier points mid-schedule snapshots).
  ``--anneal-final 0.05`` anneals both models' rates instead: half a cosine in CPU time
  over the whole run, ending at 0.05x at the last budget.

**The evaluation.** It runs after training, in this process (``--eval-threads``, default
2); its CPU time is not part of any budget. At each budget there are ``--n-eval`` samples
(default 1,000) per point:
* classes ``0..9`` cycling, seed 0, the same for every point;
* diffusion at guidance w = 0, 1, 3 with DPM-Solver++ (20 steps), and the GAN's EMA
  generator;
* scored against as many test images in the shipped fashion-mnist judge's feature space:
  FID, KID, precision/recall, and class accuracy (judge argmax = the requested class);
* printed with the real-vs-real floor (the same number of training vs test images) and the
  judge's accuracy on the 10,000 real test images (the ceiling).

One budget's evaluation costs about 5-6 CPU-minutes at 1,000 samples. Guidance w != 1 runs
the conditional and unconditional halves as one doubled batch.

**What it writes.** The JSON and two PNGs go under ``benchmarks/out/``:
``diffusion_vs_gan_budget.png`` (FID against CPU-minutes) and
``diffusion_vs_gan_budget_samples.png`` (a class grid of samples at the last budget). The
final (last-budget) models go to ``benchmarks/out/diffusion_vs_gan_budget/{diffusion,gan}``.
``diffusion_sampler_steps.py`` reuses that diffusion model.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/diffusion_vs_gan_budget.py --budgets 5,15,30 --n-eval 1000
    python benchmarks/diffusion_vs_gan_budget.py --smoke     # CPU budgets of seconds, 20 samples

**Run time: an estimate, not a measurement.** The estimate comes from probes of the
full-size nets at one thread on the shared 2-core AMD EPYC machine:
* the costs: a diffusion step (batch 128) ~1.1 CPU-s, a GAN step (batch 64) ~0.2 CPU-s, a
  U-Net call ~3.5 ms per image (~7.7 ms at w != 1);
* the steps: 30 CPU-minutes are about 1,600 diffusion steps and 8,600 GAN steps;
* training takes about 31 min of wall clock on two free cores;
* evaluation takes about 5-6 CPU-min per budget at 1,000 samples (a check with 100 samples
  took 35 CPU-s per budget, under load), so 15-18 CPU-min for the three budgets and about
  10-15 min of wall clock at 2 threads;
* in all about 40-50 min on a quiet 2-core machine (about 55-65 min with ``--n-eval 2000``).
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import atexit
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import save
from gan_fashion_mnist import CONFIGS as GAN_CONFIGS
from gan_fashion_mnist import NET as GAN_NET

import genlab
from genlab.data.datasets import load_splits
from genlab.evaluation import compare_sets
from genlab.metrics.judges import judge_for
from genlab.models import Diffusion
from genlab.models.gan import GAN

BEST_GAN = "conditional (hinge + SN, projection)"  # RESULTS.md, GANs on Fashion-MNIST, 900 s table
GAN_CONFIG = {**GAN_NET, **GAN_CONFIGS[BEST_GAN]}
GAN_TRAIN = {"batch_size": 64, "seed": 0, "val_fraction": 0}  # as gan_fashion_mnist.py trains it
DIFFUSION_CONFIG = {"num_classes": -1, "noise_schedule": "cosine", "prediction": "v", "channels": 32}
DIFFUSION_TRAIN = {"batch_size": 128, "lr": 1e-3, "seed": 0, "val_fraction": 0}  # diffusion_defaults.py's
TINY = {"diffusion": {"channels": 8, "heads": 2}, "gan": {}}  # --smoke only
OUT = "benchmarks/out/diffusion_vs_gan_budget"  # the model folders (diffusion_sampler_steps.py reads one)
SAMPLE_CHUNK = 100  # diffusion images per sampling batch (smaller batches are faster per image on CPU)


def budget_label(seconds: float) -> str:
    return f"{seconds / 60:g} CPU-min" if seconds >= 60 else f"{seconds:g} CPU-s"


class CpuBudget:
    """Trainer callback: keeps a copy of the model's state when this process's CPU time
    (``time.process_time()`` since the fit started) passes each of ``budgets_s``, and stops
    the fit after the last. With ``final < 1`` it also anneals the learning rate by CPU
    time: half a cosine from ``lr`` to ``lr * final`` at the last budget (``set_lr`` keeps a
    GAN's two rates in their ratio)."""

    def __init__(self, budgets_s, *, lr: float | None = None, final: float = 1.0, name: str = "",
                 heartbeat_s: float = 300.0):
        self.budgets = sorted(float(b) for b in budgets_s)
        self.lr, self.final, self.name, self.heartbeat_s = lr, final, name, heartbeat_s
        self.snapshots: list[dict] = []
        self.c0 = self.t0 = None
        self.steps = 0

    def on_fit_start(self, trainer) -> None:
        self.c0, self.t0 = time.process_time(), time.perf_counter()
        self.next_beat = self.heartbeat_s

    def on_step_end(self, trainer, logs) -> None:
        cpu = time.process_time() - self.c0
        self.steps = trainer.step
        if self.lr is not None and self.final < 1:
            t = min(cpu / self.budgets[-1], 1.0)
            trainer.set_lr(self.lr * (self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * t))))
        while len(self.snapshots) < len(self.budgets) and cpu >= self.budgets[len(self.snapshots)]:
            b = self.budgets[len(self.snapshots)]
            state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            self.snapshots.append({"budget_s": b, "step": trainer.step, "cpu_s": round(cpu, 2),
                                   "wall_s": round(time.perf_counter() - self.t0, 1), "state": state})
            print(f"[{self.name}] {budget_label(b)} reached: step {trainer.step}, {cpu:.1f} CPU-s, "
                  f"{time.perf_counter() - self.t0:.0f} s wall", flush=True)
        if cpu >= self.next_beat and len(self.snapshots) < len(self.budgets):
            self.next_beat += self.heartbeat_s
            shown = ", ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, float))
            print(f"[{self.name}] step {trainer.step}, {cpu:.0f} CPU-s: {shown}", flush=True)
        if len(self.snapshots) == len(self.budgets):
            trainer.should_stop = True


def train_model(kind: str, train, budgets_s, *, tiny: bool = False, anneal_final: float = 1.0,
                heartbeat_s: float = 300.0):
    """Train ``kind`` (``diffusion`` or ``gan``) on ``train`` at one thread until its
    process CPU time passes the last of ``budgets_s``; returns ``(model, CpuBudget)`` with
    one state snapshot per budget."""
    torch.set_num_threads(1)
    if kind == "diffusion":
        model, options, lr = Diffusion(**{**DIFFUSION_CONFIG, **(TINY[kind] if tiny else {})}), DIFFUSION_TRAIN, 1e-3
    else:
        model, options = GAN(**{**GAN_CONFIG, **(TINY[kind] if tiny else {})}), GAN_TRAIN
        lr = GAN_CONFIG.get("lr_g")
    cb = CpuBudget(budgets_s, lr=lr, final=anneal_final, name=kind, heartbeat_s=heartbeat_s)
    model.fit(train, {"max_steps": 10 ** 9, "epochs": 10 ** 6, "threads": 1, "progress": False, **options},
              callbacks=[cb])
    return model, cb


def worker(args) -> None:
    """One model's training process: writes its snapshots, its final model folder and a
    JSON of what it reached into ``args.work``."""
    budgets = [float(b) for b in args.budgets_s.split(",")]
    splits = load_splits("fashion-mnist", **({"limit": args.limit} if args.limit else {}))
    c0 = time.process_time()
    model, cb = train_model(args.worker, splits["train"], budgets, tiny=args.tiny, anneal_final=args.anneal_final,
                            heartbeat_s=max(60.0, budgets[-1] / 12))
    cpu = time.process_time() - c0
    work = Path(args.work)
    info = {"kind": args.worker, "steps": cb.steps, "train_cpu_s": round(cpu, 1),
            "cpu_s_per_step": round(cpu / max(cb.steps, 1), 4),
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "threads": torch.get_num_threads(), "budgets": []}
    for i, snap in enumerate(cb.snapshots):
        torch.save(snap.pop("state"), work / f"{args.worker}-{i}.pt")
        info["budgets"].append(snap)
    model.save(args.model_dir)
    (work / f"{args.worker}.json").write_text(json.dumps(info, indent=1))
    print(f"[{args.worker}] done: {cb.steps} steps, {cpu:.1f} CPU-s ({info['cpu_s_per_step']:.3f} per step); "
          f"model saved to {args.model_dir}", flush=True)


def run_workers(kinds, work: Path, budgets_s, model_dirs: dict, *, limit: int | None, tiny: bool,
                anneal_final: float) -> dict:
    """Train ``kinds`` side by side, one process each; returns each one's JSON."""
    script = os.path.abspath(__file__)
    procs = {}
    for kind in kinds:
        cmd = [sys.executable, script, "--worker", kind, "--work", str(work), "--model-dir", str(model_dirs[kind]),
               "--budgets-s", ",".join(f"{b:g}" for b in budgets_s), "--anneal-final", str(anneal_final)]
        if limit:
            cmd += ["--limit", str(limit)]
        if tiny:
            cmd += ["--tiny"]
        procs[kind] = subprocess.Popen(cmd, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    rcs = {kind: p.wait() for kind, p in procs.items()}
    bad = {k: rc for k, rc in rcs.items() if rc != 0}
    if bad:
        sys.exit(f"training process(es) failed: {bad}")
    return {kind: json.loads((work / f"{kind}.json").read_text()) for kind in kinds}


def diffusion_samples(m, y: torch.Tensor, *, guidance: float, sampler: str = "dpm++", steps: int = 20,
                      seed: int = 0, chunk: int = SAMPLE_CHUNK) -> torch.Tensor:
    """``len(y)`` samples of classes ``y`` from one seeded generator, ``chunk`` at a time."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([m.sample(len(y[i:i + chunk]), y=y[i:i + chunk], sampler=sampler, steps=steps,
                               guidance=guidance, generator=g) for i in range(0, len(y), chunk)])


def gan_samples(m, y: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([m.sample(len(y[i:i + 500]), y=y[i:i + 500], generator=g) for i in range(0, len(y), 500)])


METRICS = ("fid", "kid", "prdc")


def score(fake: torch.Tensor, y: torch.Tensor | None, real: torch.Tensor, judge) -> dict:
    """FID, KID, precision/recall/density/coverage of ``fake`` against ``real`` in the
    judge's space, and the share of ``fake`` the judge puts in the requested class ``y``."""
    f = judge.extract(fake, progress=False)
    res = compare_sets(real, fake, judge=judge, metrics=METRICS, progress=False, fake_features=f)
    out = {r["metric"]: r["value"] for r in res["rows"]}
    if y is not None:
        out["class_accuracy"] = float((f["probs"].argmax(1) == y).double().mean())
    if res.get("notes"):
        out["notes"] = res["notes"]
    return out


def load_state(model, path: Path):
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return model


def write_figure(fig, path: Path) -> None:
    """Lay out ``fig``, write it to ``path`` (PNG, 130 dpi) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    print(f"wrote {path}")


def plot_curves(rows: list[dict], floor: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for model in dict.fromkeys(r["model"] for r in rows):
        pts = [(r["budget_s"] / 60, r["fid"]) for r in rows if r["model"] == model]
        ax.plot(*zip(*pts), marker="o", label=model)
    ax.axhline(floor, color="grey", ls="--", lw=1, label="real vs real floor")
    ax.set_xlabel("training budget, CPU-minutes (one thread, process CPU time)")
    ax.set_ylabel("FID (judge:fashion-mnist), lower is better")
    ax.set_yscale("log")
    ax.set_title("Fashion-MNIST, class-conditional: diffusion vs conditional GAN", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    write_figure(fig, path)


def plot_class_grid(panels: dict[str, torch.Tensor], y: torch.Tensor, classes: list[str], title: str,
                    path: Path) -> None:
    """One panel per entry of ``panels``: a row per class, the first samples of that class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    cols = max(1, min(8, len(y) // k))
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * (0.3 * cols + 0.5) + 1.0, 0.3 * k + 1.4),
                             squeeze=False)
    for ax, (name, x) in zip(axes[0], panels.items()):
        grid = torch.ones(k * 29 + 1, cols * 29 + 1)
        for c in range(k):
            idx = (y == c).nonzero().flatten()[:cols]
            for j, i in enumerate(idx.tolist()):
                grid[1 + c * 29:1 + c * 29 + 28, 1 + j * 29:1 + j * 29 + 28] = x[i, 0]
        ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name.replace(" (", "\n("), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([1 + c * 29 + 14 for c in range(k)])
        ax.set_yticklabels(classes if ax is axes[0][0] else [""] * k, fontsize=6)
    fig.suptitle(title, fontsize=9)
    write_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="5,15,30", help="training budgets per model, CPU-minutes, along one run")
    ap.add_argument("--n-eval", type=int, default=1000, help="samples (and test images) per evaluation point")
    ap.add_argument("--guidance", default="0,1,3", help="diffusion guidance weights to evaluate")
    ap.add_argument("--steps", type=int, default=20, help="DPM-Solver++ steps for the diffusion samples")
    ap.add_argument("--eval-threads", type=int, default=2, help="threads for the evaluation (after training)")
    ap.add_argument("--anneal-final", type=float, default=1.0,
                    help="< 1: anneal both models' lr by CPU time (cosine) to this factor at the last budget")
    ap.add_argument("--out", default=OUT, help="folder for the final model folders")
    # a training process's own options (run_workers passes them)
    ap.add_argument("--worker", choices=("diffusion", "gan"), help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--budgets-s", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    _common.add_smoke(ap)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    smoke = _common.start_smoke(args)
    budgets_s = [1.0, 2.0] if smoke else [60 * float(b) for b in args.budgets.split(",")]
    n_eval, limit = (20, 512) if smoke else (args.n_eval, None)
    ws = [float(w) for w in args.guidance.split(",")]
    splits = _common.splits_or_skip("fashion-mnist", **({"limit": limit} if limit else {}))  # before any training
    train, test = splits["train"], splits["test"]
    out = _common.out_path(args.out)
    model_dirs = {kind: out / kind for kind in ("diffusion", "gan")}
    work = Path(tempfile.mkdtemp(prefix="genlab-dvg-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)

    print(f"training diffusion and {BEST_GAN} side by side, one process and one thread each, to "
          f"{', '.join(budget_label(b) for b in budgets_s)} of each process's own CPU time "
          f"(time.process_time(): robust to a shared machine); load {os.getloadavg()[0]:.2f}", flush=True)
    t0 = time.perf_counter()
    infos = run_workers(("diffusion", "gan"), work, budgets_s, model_dirs, limit=limit, tiny=smoke,
                        anneal_final=args.anneal_final)
    train_wall = time.perf_counter() - t0
    print(f"training done in {train_wall:.0f} s wall; load {os.getloadavg()[0]:.2f}", flush=True)

    torch.set_num_threads(1 if smoke else max(1, min(args.eval_threads, os.cpu_count() or 1)))
    judge = judge_for("fashion-mnist")
    n = min(n_eval, len(test))
    real, y = test.x[:n], torch.arange(n) % 10
    floor = score(train.x[:n], None, real, judge)
    ceiling = float(judge.accuracy(test.x, test.y))
    diffusion, gan = genlab.load(model_dirs["diffusion"]), genlab.load(model_dirs["gan"])
    rows, grid = [], {}
    for i, b in enumerate(budgets_s):
        c0, e0 = time.process_time(), time.perf_counter()
        di, gi = infos["diffusion"]["budgets"][i], infos["gan"]["budgets"][i]
        load_state(diffusion, work / f"diffusion-{i}.pt")
        load_state(gan, work / f"gan-{i}.pt")
        for w in ws:
            s0 = time.perf_counter()
            x = diffusion_samples(diffusion, y, guidance=w, steps=args.steps)
            rows.append({"budget_s": b, "model": f"diffusion w={w:g}", "guidance": w, "steps": di["step"],
                         "train_cpu_s": di["cpu_s"], "sample_s": round(time.perf_counter() - s0, 1),
                         **score(x, y, real, judge)})
            if i == len(budgets_s) - 1 and w in (1.0, max(ws)):
                grid[f"diffusion w={w:g} (DPM++ {args.steps})"] = x
        s0 = time.perf_counter()
        x = gan_samples(gan, y)
        rows.append({"budget_s": b, "model": "conditional GAN", "steps": gi["step"], "train_cpu_s": gi["cpu_s"],
                     "sample_s": round(time.perf_counter() - s0, 1), **score(x, y, real, judge)})
        if i == len(budgets_s) - 1:
            grid["conditional GAN (EMA G)"] = x
        ev_cpu, ev_wall = time.process_time() - c0, time.perf_counter() - e0
        print(f"\n### {budget_label(b)} per model (evaluation: {ev_cpu:.0f} CPU-s, {ev_wall:.0f} s wall, "
              f"{torch.get_num_threads()} thread(s), not part of the budget)\n", flush=True)
        print("| model | steps | train CPU-s | FID | KID | precision | recall | class acc. |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            if r["budget_s"] == b:
                r["eval_cpu_s"] = round(ev_cpu, 1)
                print(f"| {r['model']} | {r['steps']} | {r['train_cpu_s']:.0f} | {r['fid']:.2f} | {r['kid']:.4f} | "
                      f"{r['precision']:.3f} | {r['recall']:.3f} | {r['class_accuracy']:.3f} |")
        print(f"| real vs real floor (train vs test) | - | - | {floor['fid']:.2f} | {floor['kid']:.4f} | "
              f"{floor['precision']:.3f} | {floor['recall']:.3f} | {ceiling:.3f} (judge on 10k real test) |",
              flush=True)
    print(f"\n{n} samples (classes cycling 0..9, seed 0) vs {n} test images per point, feature space "
          f"{judge.feature_space}; diffusion by DPM-Solver++ {args.steps} steps; budgets are each training "
          f"process's own CPU time at 1 thread (time.process_time()), so other work on the machine does not "
          f"change them.\n")
    last = budgets_s[-1]
    gan_last = next(r for r in rows if r["budget_s"] == last and r["model"] == "conditional GAN")
    for w in sorted(ws, key=lambda w: (w != 1.0, w)):
        d = next(r for r in rows if r["budget_s"] == last and r["model"] == f"diffusion w={w:g}")
        _common.ratio(f"FID at {budget_label(last)}, diffusion w={w:g} DPM++-{args.steps} vs conditional GAN "
                      f"(lower is better)", d["fid"], gan_last["fid"], "GAN")
    stem = "benchmarks/out/diffusion_vs_gan_budget"
    plot_curves(rows, floor["fid"], _common.out_path(stem + ".png"))
    plot_class_grid(grid, y, judge.classes, f"samples at {budget_label(last)} per model (rows: requested class)",
                    _common.out_path(stem + "_samples.png"))
    save({"benchmark": "diffusion_vs_gan_budget", "budgets_s": budgets_s, "n_eval": n, "guidance": ws,
          "dpm_steps": args.steps, "anneal_final": args.anneal_final, "budget_clock": "time.process_time() per process",
          "diffusion": {"config": DIFFUSION_CONFIG, "train": DIFFUSION_TRAIN, **infos["diffusion"]},
          "gan": {"name": BEST_GAN, "config": {k: list(v) if isinstance(v, tuple) else v for k, v in GAN_CONFIG.items()},
                  "train": GAN_TRAIN, **infos["gan"]},
          "train_wall_s": round(train_wall, 1), "floor": floor, "judge_accuracy_real_test": ceiling,
          "model_dirs": {k: str(v) for k, v in model_dirs.items()}, "rows": rows}, stem + ".json")


if __name__ == "__main__":
    main()
