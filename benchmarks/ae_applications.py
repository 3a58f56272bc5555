"""The three autoencoder applications on Fashion-MNIST, on a CPU budget.

(a) anomaly detection, leave-one-class-out: for each class, a conv autoencoder trained
    on the other nine; ROC-AUC of the reconstruction error (held-out class = anomaly);
(b) denoising: PSNR gain of a denoising conv autoencoder (trained with noise std 0.3)
    at test noise std 0.1 / 0.3 / 0.5, next to a plain autoencoder;
(c) compression: PSNR against bits per latent dimension at latent size 16 and 32.

Usage:
    python benchmarks/ae_applications.py                      # all, ~10 min on 2 cores
    python benchmarks/ae_applications.py --epochs 1 --classes 0,1 --parts a
    python benchmarks/ae_applications.py --smoke           # 1 epoch on 128 images, class 0

Prints markdown tables (with the budget: epochs, optimizer steps, wall seconds) and
writes every number to the ``--out`` JSON file.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import _common  # noqa: E402
import genlab  # noqa: E402
from genlab.models import Autoencoder  # noqa: E402
from genlab.pipelines import Compression, Denoiser, holdout_class_auc  # noqa: E402

DATA = "fashion-mnist"
CONV = {"arch": "conv", "channels": (32, 64)}
NOISE_LEVELS = (0.1, 0.3, 0.5)
BITS = (8, 6, 4, 2)
LATENTS = (16, 32)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="training epochs per model (default 3)")
    p.add_argument("--classes", default="0-9",
                   help="held-out classes for (a): '0-9' or a list like '0,3,5' (default all)")
    p.add_argument("--parts", default="abc", help="which parts to run: any of a, b, c")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/out/ae_applications.json", help="JSON results file")
    _common.add_smoke(p)
    args = p.parse_args(argv)
    args.limit = None
    if _common.start_smoke(args):  # one latent size, two bit depths
        global LATENTS, BITS
        args.epochs, args.classes, args.parts, args.limit = 1, "0", "abc", 128
        LATENTS, BITS = (LATENTS[-1],), (BITS[0], BITS[-1])
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    try:
        if "-" in args.classes:
            lo, hi = (int(v) for v in args.classes.split("-"))
            args.classes = list(range(lo, hi + 1))
        else:
            args.classes = [int(v) for v in args.classes.split(",") if v.strip()]
    except ValueError:
        p.error(f"--classes must look like '0-9' or '0,3,5', got {args.classes!r}")
    if not args.classes or any(not 0 <= c <= 9 for c in args.classes):
        p.error("--classes must name classes in 0..9")
    if not set(args.parts) <= set("abc") or not args.parts:
        p.error("--parts must be letters from 'abc'")
    return args


def train_ae(splits: dict, args: argparse.Namespace, **config) -> tuple[Autoencoder, dict]:
    """Fit one conv autoencoder; return it and its budget row."""
    train = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
             "progress": False}
    t0 = time.time()
    model = Autoencoder(**CONV, **config).fit(splits["train"], train, val=splits["val"])
    steps = math.ceil(len(splits["train"]) / args.batch_size) * args.epochs
    return model, {"epochs": args.epochs, "steps": steps, "wall_s": time.time() - t0}


def part_a(splits: dict, args: argparse.Namespace) -> dict:
    rows = []
    t0 = time.time()
    for c in args.classes:
        r = holdout_class_auc(splits, c, model_config={**CONV, "latent_dim": 16},
                              train={"epochs": args.epochs, "batch_size": args.batch_size},
                              seed=args.seed)
        r["class_name"] = splits["train"].classes[c]
        rows.append(r)
        print(f"  (a) class {c} {r['class_name']:<12} ROC-AUC {r['roc_auc']:.3f} "
              f"({r['train_seconds']:.0f} s)", flush=True)
    aucs = [r["roc_auc"] for r in rows]
    return {"per_class": rows, "mean_roc_auc": sum(aucs) / len(aucs),
            "budget": {"epochs": args.epochs, "steps": sum(r["steps"] for r in rows),
                       "wall_s": time.time() - t0, "models": len(rows)}}


def part_b(splits: dict, args: argparse.Namespace, plain: Autoencoder | None) -> dict:
    t0 = time.time()
    dae, budget = train_ae(splits, args, latent_dim=32, denoise_std=0.3)
    test = splits["test"].x
    g = lambda: torch.Generator().manual_seed(args.seed)  # noqa: E731 - same noise for both
    res = Denoiser(dae).evaluate(test, noise_std=list(NOISE_LEVELS), generator=g())
    base = Denoiser(plain).evaluate(test, noise_std=list(NOISE_LEVELS), generator=g()) if plain else {}
    rows = [{"noise_std": s, "psnr_noisy_db": res[f"psnr_noisy_db@{s:g}"],
             "psnr_denoised_db": res[f"psnr_denoised_db@{s:g}"],
             "psnr_gain_db": res[f"psnr_gain_db@{s:g}"],
             "plain_ae_gain_db": base.get(f"psnr_gain_db@{s:g}")} for s in NOISE_LEVELS]
    budget["wall_s"] = time.time() - t0
    return {"rows": rows, "train_noise_std": 0.3, "latent_dim": 32, "budget": budget}


def part_c(splits: dict, args: argparse.Namespace) -> tuple[dict, Autoencoder]:
    rows, budgets, models = [], {}, {}
    for d in LATENTS:
        t0 = time.time()
        model, budget = train_ae(splits, args, latent_dim=d)
        models[d] = model
        for bits in BITS:
            comp = Compression(model, bits=bits).fit_range(splits["train"].x)
            rows.append({"latent_dim": d, **comp.evaluate(splits["test"].x)})
        budget["wall_s"] = time.time() - t0
        budgets[d] = budget
    return {"rows": rows, "budget": budgets}, models[LATENTS[-1]]


def markdown(results: dict) -> str:
    out = []
    a, b, c = results.get("a"), results.get("b"), results.get("c")
    out += ["### Budget", "", "| part | models | epochs | steps | wall s |", "|---|---|---|---|---|"]
    if a:
        out.append(f"| (a) anomaly, conv AE latent 16 | {a['budget']['models']} | {a['budget']['epochs']} "
                   f"| {a['budget']['steps']:.0f} | {a['budget']['wall_s']:.0f} |")
    if b:
        out.append(f"| (b) denoising conv AE latent 32 | 1 | {b['budget']['epochs']} "
                   f"| {b['budget']['steps']} | {b['budget']['wall_s']:.0f} |")
    if c:
        for d, bud in c["budget"].items():
            out.append(f"| (c) compression conv AE latent {d} | 1 | {bud['epochs']} | {bud['steps']} "
                       f"| {bud['wall_s']:.0f} |")
    out.append(f"| total | | | | {results['wall_s']:.0f} |")
    if a:
        out += ["", "### (a) Anomaly detection, held-out class = anomaly (test ROC-AUC)", "",
                "| class | name | ROC-AUC | AP |", "|---|---|---|---|"]
        out += [f"| {int(r['holdout'])} | {r['class_name']} | {r['roc_auc']:.3f} | "
                f"{r['average_precision']:.3f} |" for r in a["per_class"]]
        out.append(f"| mean | | {a['mean_roc_auc']:.3f} | |")
    if b:
        out += ["", f"### (b) Denoising (DAE trained at std {b['train_noise_std']}, latent "
                f"{b['latent_dim']}; Gaussian noise, clipped to [0, 1])", "",
                "| noise std | PSNR noisy | PSNR denoised | gain (DAE) | gain (plain AE) |",
                "|---|---|---|---|---|"]
        for r in b["rows"]:
            plain = "" if r["plain_ae_gain_db"] is None else f"{r['plain_ae_gain_db']:+.2f}"
            out.append(f"| {r['noise_std']} | {r['psnr_noisy_db']:.2f} | {r['psnr_denoised_db']:.2f} "
                       f"| {r['psnr_gain_db']:+.2f} | {plain} |")
    if c:
        out += ["", "### (c) Compression (range fit on train codes; raw = 6272 bits/image)", "",
                "| latent | bits/dim | bits/image | ratio | PSNR dB | unquantised PSNR dB |",
                "|---|---|---|---|---|---|"]
        out += [f"| {r['latent_dim']:.0f} | {r['bits']:.0f} | {r['bits_per_image']:.0f} | "
                f"{r['compression_ratio']:.0f}x | {r['psnr_db']:.2f} | {r['psnr_unquantized_db']:.2f} |"
                for r in c["rows"]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    t0 = time.time()
    splits = _common.splits_or_skip(DATA, limit=args.limit)
    print(f"{DATA}: train {len(splits['train'])}, val {len(splits['val'])}, test "
          f"{len(splits['test'])}; torch threads {torch.get_num_threads()}", flush=True)
    results: dict = {"dataset": DATA, "epochs": args.epochs, "batch_size": args.batch_size,
                     "seed": args.seed, "genlab_version": genlab.__version__,
                     "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "machine": platform.processor() or platform.machine()}
    plain = None
    if "c" in args.parts:
        results["c"], plain = part_c(splits, args)
        print("  (c) done", flush=True)
    if "b" in args.parts:
        results["b"] = part_b(splits, args, plain)
        print("  (b) done", flush=True)
    if "a" in args.parts:
        results["a"] = part_a(splits, args)
    results["wall_s"] = time.time() - t0
    table = markdown(results)
    results["markdown"] = table
    print("\n" + table)
    if "a" in results:
        _common.ratio("(a) mean ROC-AUC", results["a"]["mean_roc_auc"], 0.5, "chance")
    if "b" in results:
        r = next(r for r in results["b"]["rows"] if r["noise_std"] == 0.3)
        _common.ratio("(b) PSNR gain at noise 0.3, dB", r["psnr_gain_db"], r["plain_ae_gain_db"],
                      "plain autoencoder", "" if r["plain_ae_gain_db"] is not None else "part c not run")
    if "c" in results:
        r = results["c"]["rows"][0]
        _common.ratio(f"(c) PSNR at {r['bits']:.0f} bits/dim", r["psnr_db"], r["psnr_unquantized_db"], "unquantised")
    out = _common.out_path(args.out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({**({"smoke": True} if _common.SMOKE else {}), **results}, f, indent=2)
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
