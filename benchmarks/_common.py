"""Shared helpers for the benchmark scripts (not part of the package)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")


def git_rev() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except Exception:
        return "?"


def save(result: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
              "commit": git_rev(), **result}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


class Budget:
    """A trainer callback that stops training after ``seconds`` of wall clock; ``steps``
    counts the optimizer steps it saw."""

    def __init__(self, seconds: float):
        self.seconds, self.t0, self.steps = seconds, time.time(), 0

    def on_step_end(self, trainer, logs):
        self.steps += 1
        if time.time() - self.t0 > self.seconds:
            trainer.should_stop = True


class WallAnneal(Budget):
    """A ``Budget`` that also anneals the learning rate by wall clock: half a cosine from
    ``lr`` to ``lr * final`` over ``seconds``, after an optional linear warm-up over
    ``warmup_s`` (a schedule in steps cannot know how many steps a shared machine allows)."""

    def __init__(self, seconds: float, lr: float, final: float = 0.05, warmup_s: float = 0.0):
        super().__init__(seconds)
        self.lr, self.final, self.warmup_s = lr, final, warmup_s

    def on_step_end(self, trainer, logs):
        import math

        el = time.time() - self.t0
        t = min(el / self.seconds, 1.0)
        warm = min(1.0, max(el / self.warmup_s, 1e-3)) if self.warmup_s > 0 else 1.0  # linear warm-up first
        trainer.set_lr(warm * self.lr * (self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * t))))
        super().on_step_end(trainer, logs)
