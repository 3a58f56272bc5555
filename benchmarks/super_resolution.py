"""4x super-resolution on Fashion-MNIST (7x7 -> 28x28): SRGAN (content MSE + 1e-3
adversarial, spectral-norm D) against bicubic interpolation, PSNR and SSIM on the test
split. The low-resolution inputs are area-downsampled test images.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/super_resolution.py [--budget-s 150]
    python benchmarks/super_resolution.py --smoke     # one step on 128 images, scored on 128

1 thread, batch 64, a wall-clock training budget (a callback stops the loop). Writes
benchmarks/out/super_resolution.json and benchmarks/out/super_resolution.png (rows of
nearest-upscaled input | bicubic | model | original).
"""
from __future__ import annotations

import argparse
import time

import _common
from _common import save

import torch

from genlab.models.gan import SRGAN
from genlab.pipelines.super_resolution import SuperResolution
from genlab.report.figures import save_grid

CFG = {"factor": 4, "channels": 32, "n_blocks": 4, "d_channels": (32, 64), "adv_weight": 1e-3}


class Budget:
    def __init__(self, seconds: float):
        self.seconds, self.t0, self.steps = seconds, time.time(), 0

    def on_step_end(self, trainer, logs):
        self.steps = trainer.step
        if time.time() - self.t0 > self.seconds:
            trainer.should_stop = True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget-s", type=float, default=150)
    _common.add_smoke(ap)
    args = ap.parse_args()
    smoke = _common.start_smoke(args)
    if smoke:  # the budget stops training after its first step
        args.budget_s = 0
    torch.set_num_threads(1)
    splits = _common.splits_or_skip("fashion-mnist", limit=128 if smoke else None)
    budget = Budget(args.budget_s)
    t = time.time()
    m = SRGAN(**CFG).fit(splits["train"], {"epochs": 1000, "batch_size": 64, "lr": 1e-3, "seed": 0, "threads": 1,
                                            "progress": False, "val_fraction": 0}, callbacks=[budget])
    wall = time.time() - t
    pipe = SuperResolution(m)
    res = pipe.evaluate(splits["test"])
    hr = splits["test"].x[:8]
    rows = torch.cat([pipe.side_by_side(pipe.downsample(hr)).reshape(8, 3, 1, 28, 28), hr[:, None]], 1)
    png = _common.out_path("benchmarks/out/super_resolution.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    save_grid(rows.reshape(-1, 1, 28, 28), png, nrow=4)
    print(f"\nBudget: {wall:.0f} s training ({budget.steps} steps, batch 64, 1 thread); test split, n = {res['n']}.\n")
    print("| method | PSNR (dB) | SSIM |")
    print("| --- | --- | --- |")
    print(f"| bicubic | {res['psnr_bicubic']:.2f} | {res['ssim_bicubic']:.4f} |")
    print(f"| genlab SRGAN (4x, 7x7 -> 28x28) | {res['psnr']:.2f} | {res['ssim']:.4f} |")
    _common.ratio("test PSNR, dB", res["psnr"], res["psnr_bicubic"], "bicubic")
    _common.ratio("test SSIM", res["ssim"], res["ssim_bicubic"], "bicubic")
    save({"benchmark": "super_resolution", "config": {k: list(v) if isinstance(v, tuple) else v for k, v in CFG.items()},
          "steps": budget.steps, "wall_s": round(wall, 1), **res}, "benchmarks/out/super_resolution.json")


if __name__ == "__main__":
    main()
