"""Run benchmark scripts' ``--smoke`` mode, each in its own process, a few at a time.

    python benchmarks/_smoke.py                      # every script, 2 at a time
    python benchmarks/_smoke.py fid_speed.py gan_toy.py --jobs 1 --json out.json

Importing torch and genlab is most of a smoke run's CPU time, so this process imports them
once and forks one child per script (copy-on-write: the child starts with them loaded, and
nothing it does reaches this process or the other scripts). The parent runs no tensor code
before forking, so no OpenMP or BLAS thread pool exists to be inherited. Each child runs the
script as ``__main__`` with ``argv = [script, "--smoke"]`` in the repository root, its output
captured to a file; a child past ``--timeout`` seconds is killed. Children get the cores
shared out (``OMP_NUM_THREADS`` = cores / jobs, unless set). Prints one line per script
and, with ``--json``, writes ``{script: {"rc", "seconds", "out"}}``. Used by
``tests/test_benchmarks_smoke.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# imported once here, before forking: what most smoke runs import (optional ones if installed)
PRELOAD = ("torch", "torch._dynamo", "torch.optim", "numpy", "scipy.linalg", "sklearn.metrics",
           "matplotlib", "matplotlib.pyplot", "PIL.Image", "tqdm", "genlab", "genlab.models",
           "genlab.data", "genlab.train", "genlab.metrics", "genlab.runs", "genlab.report",
           "genlab.pipelines", "rdkit.Chem", "torchmetrics.image.fid")


# those that start processes of their own (a peer, the CLI) take longest: they go first
SLOW_FIRST = ("molecule_metrics.py", "pgm_agreement.py", "pgm_vs_pgmpy.py", "readme_timings.py")


def scripts() -> list[str]:
    """The benchmark scripts (every ``benchmarks/*.py`` not starting with ``_``)."""
    return sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def preload() -> None:
    import importlib

    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional peer: the script that needs it says so
            pass


def _child(script: str, log: str) -> None:
    """In the forked child: run ``script --smoke`` with output to ``log``; never returns."""
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.setpgid(0, 0)  # its own process group: a timeout kills what it started too
        os.chdir(ROOT)
        import atexit
        import runpy

        sys.argv = [str(BENCH / script), "--smoke"]
        sys.path.insert(0, str(BENCH))
        try:
            runpy.run_path(str(BENCH / script), run_name="__main__")
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()  # the script's own (temporary folders)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_all(names: list[str], jobs: int = 2, timeout: float = 240.0) -> dict[str, dict]:
    """Run ``names`` (script file names) ``jobs`` at a time; ``{name: {"rc", "seconds",
    "out"}}`` with ``rc`` None for a run killed at the timeout."""
    preload()
    tmp = Path(tempfile.mkdtemp(prefix="genlab-smokes-"))
    todo = sorted(names, key=lambda n: (n not in SLOW_FIRST, SLOW_FIRST.index(n) if n in SLOW_FIRST else 0))
    running, done = {}, {}
    try:
        while todo or running:
            while todo and len(running) < jobs:
                name = todo.pop(0)
                log = str(tmp / f"{name}.log")
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(name, log)
                try:
                    os.setpgid(pid, pid)  # as the child does: no race with a kill
                except OSError:
                    pass
                running[pid] = (name, log, time.perf_counter())
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.05)
                for p, (name, _, t0) in list(running.items()):
                    if time.perf_counter() - t0 > timeout:
                        try:
                            os.killpg(p, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                continue
            name, log, t0 = running.pop(pid)
            rc = os.waitstatus_to_exitcode(status)
            out = Path(log).read_text(errors="replace")
            if rc == -signal.SIGKILL and time.perf_counter() - t0 > timeout:
                rc, out = None, out + f"\n[killed after {timeout:.0f} s]"
            done[name] = {"rc": rc, "seconds": round(time.perf_counter() - t0, 2), "out": out}
            print(f"{name:<24} rc {rc}  {done[name]['seconds']:6.1f} s", flush=True)
    finally:
        for p in running:
            try:
                os.killpg(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scripts", nargs="*", help="script file names (default: all)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per script")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    names = a.scripts or scripts()
    unknown = sorted(set(names) - set(scripts()))
    if unknown:
        sys.exit(f"not benchmark scripts: {', '.join(unknown)} (choose from {', '.join(scripts())})")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before torch: the cores shared out
        os.environ.setdefault(var, str(max(1, (os.cpu_count() or 1) // max(1, a.jobs))))
    t = time.perf_counter()
    res = run_all(names, a.jobs, a.timeout)
    print(f"{len(res)} smoke runs in {time.perf_counter() - t:.1f} s, load average {os.getloadavg()[0]:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    sys.exit(0 if all(r["rc"] == 0 for r in res.values()) else 1)


if __name__ == "__main__":
    main()
