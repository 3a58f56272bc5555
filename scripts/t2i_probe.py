"""A quick probe of one text-to-image setting, used to choose the sizes of
``benchmarks/text_to_image.py``: train one text-conditional ``Diffusion`` on
``captioned-shapes`` at one thread until this process's own CPU time passes
``--budget-s``, save it, and score it with ``score_text_to_image`` on ``--n`` test captions
at guidance w = 1 and 3 (DPM-Solver++ 20 steps; held-out pairs and paraphrases at w = 3).
The model settings start from the benchmark's ``MODEL`` and ``TRAIN`` with the transformer
encoder and FiLM; ``--set KEY=VALUE`` changes the model's, ``--train KEY=VALUE`` the
training's (values are read as JSON when they parse: ``--set channels=16``), ``--final``
anneals the learning rate by CPU time (half a cosine to ``lr * final``).

    OMP_WAIT_POLICY=PASSIVE python scripts/t2i_probe.py c16 --budget-s 180 --set channels=16
    python scripts/t2i_probe.py smoke --budget-s 2 --n 8 --tiny   # seconds: checks the script

One JSON line per probe is printed and appended to ``benchmarks/out/t2i_probe/results.jsonl``;
the model goes to ``benchmarks/out/t2i_probe/NAME/``. A 180 CPU-s probe and its scoring at
``--n 200`` take about 4 min of wall clock on a free core (the judges are cached after the
first run). Budgets this short rank settings; they do not predict the benchmark's figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from diffusion_vs_gan_budget import CpuBudget  # noqa: E402
from text_to_image import MODEL, TINY, TRAIN  # noqa: E402

import genlab  # noqa: E402
from genlab.data.datasets import load_splits  # noqa: E402
from genlab.evaluation.caption_judges import caption_judges  # noqa: E402
from genlab.evaluation.text_to_image import score_text_to_image  # noqa: E402
from genlab.models import Diffusion  # noqa: E402

BASE = {**MODEL, "text_encoder": "transformer", "text_conditioning": "film"}


def settings(items: list[str]) -> dict:
    """``KEY=VALUE`` strings as a dict, values parsed as JSON where they parse (lists as tuples)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            sys.exit(f"settings are KEY=VALUE, got {item!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", help="the probe's name (its folder and its row)")
    ap.add_argument("--budget-s", type=float, default=180.0, help="CPU-seconds of training (default 180)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model settings")
    ap.add_argument("--train", nargs="*", default=[], metavar="KEY=VALUE", help="training settings")
    ap.add_argument("--final", type=float, default=1.0, help="anneal the learning rate to lr * final (default 1: none)")
    ap.add_argument("--n", type=int, default=200, help="test captions per guidance value (default 200)")
    ap.add_argument("--tiny", action="store_true", help="the benchmark's tiny sizes and 512 images (a check)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "t2i_probe"))
    a = ap.parse_args()
    cfg = {**BASE, **(TINY if a.tiny else {}), **settings(a.set)}
    train = {**TRAIN, **settings(a.train)}
    folder = Path(a.out) / a.name
    splits = load_splits("captioned-shapes", **({"limit": 512} if a.tiny else {}))
    torch.set_num_threads(1)
    model = Diffusion(**cfg)
    cb = CpuBudget([a.budget_s], name=a.name, heartbeat_s=1e9, lr=train["lr"], final=a.final)
    c0 = time.process_time()
    model.fit(splits["train"], {"max_steps": 10 ** 9, "epochs": 10 ** 6, "threads": 1, "progress": False, **train},
              callbacks=[cb])
    cpu = time.process_time() - c0
    model.save(folder)
    judge_opts = {"cache": False, "attribute_options": {"epochs": 1}, "image_text_options": {"epochs": 1}} if a.tiny else {}
    judges = caption_judges(splits, progress=False, **judge_opts)
    e0 = time.process_time()
    rec = score_text_to_image(genlab.load(folder), splits, judges=judges, n=a.n, guidances=(1.0, 3.0),
                              probe_guidance=3.0, sample_options={"sampler": "dpm++", "steps": 5 if a.tiny else 20},
                              progress=False)
    row = {"name": a.name, "set": {k: v for k, v in cfg.items() if BASE.get(k) != v}, "train": settings(a.train),
           "final": a.final, "budget_s": a.budget_s, "steps": cb.steps, "train_cpu_s": round(cpu),
           "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
           "load": round(os.getloadavg()[0], 2)}
    for p in rec["guidance_curve"]:
        row[f"w{p['w']:g}"] = {"all": round(p["all"], 3), "r_precision": round(p["r_precision"], 3),
                               "fid": round(p["fid"], 1), **{k: round(v, 3) for k, v in p["per_attribute"].items()}}
    for key in ("heldout", "paraphrased"):
        if key in rec:
            row[key] = round(rec[key]["all"], 3)
    row["eval_cpu_s"] = round(time.process_time() - e0)
    print(json.dumps(row), flush=True)
    with open(Path(a.out) / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
