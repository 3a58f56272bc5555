"""Shared helpers for the benchmark scripts (not part of the package)."""
from __future__ import annotations

import atexit
import importlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# ------------------------------------------------------------------------- --smoke
# ``--smoke`` runs a script's own code path (genlab and its peer side by side) at the
# smallest sizes that still exercise it, so the default test suite can run every benchmark
# (tests/test_benchmarks_smoke.py). A smoke run writes nothing under benchmarks/out/: every
# file goes to a temporary folder removed at exit, and saved JSON says "smoke": true.
SMOKE = False
_SMOKE_DIR: Path | None = None


def add_smoke(parser) -> None:
    """Add ``--smoke`` to an argparse parser."""
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny run of the same code path (for the test suite): smallest sizes, "
                             "peer side by side, ratio printed; writes only to a temporary folder")


def start_smoke(args) -> bool:
    """Turn smoke mode on when ``args.smoke``; returns it."""
    global SMOKE
    SMOKE = bool(getattr(args, "smoke", False))
    if SMOKE:
        print(f"smoke run: tiny sizes, files under {smoke_dir()} (removed at exit)", flush=True)
    return SMOKE


def parse_or_work(parser, worker) -> tuple[object, bool] | None:
    """Add ``--smoke``, parse; in a training process (``args.worker`` set) run
    ``worker(args)`` and return None, else ``(args, smoke)`` with smoke mode started."""
    add_smoke(parser)
    args = parser.parse_args()
    if getattr(args, "worker", None):
        worker(args)
        return None
    return args, start_smoke(args)


def markdown_table(columns: list[str], rows: list[list]) -> None:
    """Print ``rows`` (lists of cells, already formatted) under ``columns`` as a Markdown table."""
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def smoke_dir() -> Path:
    """This process's temporary folder for smoke outputs (removed at exit)."""
    global _SMOKE_DIR
    if _SMOKE_DIR is None:
        _SMOKE_DIR = Path(tempfile.mkdtemp(prefix="genlab-smoke-"))
        atexit.register(shutil.rmtree, _SMOKE_DIR, ignore_errors=True)
    return _SMOKE_DIR


def out_path(path: str | Path) -> Path:
    """``path``, or in smoke mode the same relative path under ``smoke_dir()``."""
    path = Path(path)
    if not SMOKE or path.is_relative_to(smoke_dir()):
        return path
    rel = path.relative_to(path.anchor) if path.is_absolute() else path
    return smoke_dir() / rel


def ratio(label: str, genlab: float, peer: float | None, peer_name: str, note: str = "") -> None:
    """Print the line a benchmark is read by, ``ratio <label>: genlab G / <peer> P = G/P``;
    with ``peer=None`` (the peer is not installed) ``... / <peer> skipped (<note>)``."""
    if peer is None:
        print(f"ratio {label}: genlab {genlab:.6g} / {peer_name} skipped ({note or 'not run'})",
              flush=True)
    else:
        r = genlab / peer if peer else (float("inf") if genlab else float("nan"))
        print(f"ratio {label}: genlab {genlab:.6g} / {peer_name} {peer:.6g} = {r:.4g}"
              + (f" ({note})" if note else ""), flush=True)


def have(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked in sys.modules
        return False


def optional(module: str, why: str = ""):
    """``import module``, or ``None`` with a printed note when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        print(f"note: {module} is not installed ({e}); its side is skipped"
              + (f": {why}" if why else ""), flush=True)
        return None


def smoke_skip(reason: str) -> None:
    """End a smoke run that cannot run here (data not installed): prints a line the smoke
    test reads as a skip, exits 0. Outside smoke mode, an error."""
    if not SMOKE:
        sys.exit(reason)
    print(f"SMOKE-SKIP: {reason}", flush=True)
    sys.exit(0)


def splits_or_skip(name: str, **options):
    """``load_splits(name, **options)``; in smoke mode a data set that is not installed
    ends the run with ``smoke_skip``."""
    from genlab.data.datasets import load_splits
    from genlab.errors import DataError

    try:
        return load_splits(name, **options)
    except (DataError, ImportError, FileNotFoundError) as e:
        if not SMOKE:
            raise
        smoke_skip(f"data set {name!r} is not installed: {str(e).splitlines()[0]}")


def smoke_moses_references(n_test: int = 60, n_train: int = 500) -> dict:
    """Small MOSES reference lists for molecule smoke runs (``moses_metrics(..., **refs)``):
    the first ``n_test`` test and scaffold-test SMILES and ``n_train`` training SMILES, so no
    reference cache is built. Skips the smoke run when RDKit or molsets' data is missing."""
    if not have("rdkit"):
        smoke_skip("RDKit is not installed (pip install 'genlab[chem]')")
    from genlab.data.molecules import moses_smiles
    from genlab.errors import DataError

    try:
        return {"test": moses_smiles("test")[:n_test],
                "test_scaffolds": moses_smiles("test_scaffolds")[:n_test],
                "train": moses_smiles("train")[:n_train], "k": (10, 20)}
    except DataError as e:
        smoke_skip(str(e).splitlines()[0])


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
    """Write ``result`` with the date, machine and commit as JSON (smoke runs: under
    ``smoke_dir()``, marked ``"smoke": true``)."""
    path = out_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
              "commit": git_rev(), **({"smoke": True} if SMOKE else {}), **result}
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
