"""Every benchmark script's ``--smoke`` run: exits 0, prints at least one ratio line with
genlab's figure, and writes nothing under ``benchmarks/out/``.

One subprocess, ``benchmarks/_smoke.py``, runs every script's ``--smoke`` in a process of
its own, two at a time (forked after importing torch and genlab once: that import is most
of a smoke run's CPU time), once per test session; each test reads its script's result. A
smoke run whose data set is not installed here prints ``SMOKE-SKIP: ...`` and the test
skips; a missing peer library (pythae, pgmpy, torchmetrics, MOSES's code) is skipped by the
script itself, with a note, and genlab's side must still have run.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import genlab

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))
# "ratio <label>: genlab <number> / <peer> <number> = <ratio>" or "... / <peer> skipped (<why>)"
NUMBER = r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)"
RATIO = re.compile(rf"^ratio .+?: genlab {NUMBER} / .+? (?:{NUMBER} = {NUMBER}|skipped \(.+\))", re.M)


def _out_files() -> dict[str, float]:
    out = BENCH / "out"
    return {str(p): p.stat().st_mtime for p in out.rglob("*") if p.is_file()} if out.is_dir() else {}


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    before = _out_files()
    src = str(Path(genlab.__file__).resolve().parents[1])  # the genlab under test
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    res = tmp_path_factory.mktemp("smoke") / "results.json"
    t = time.perf_counter()
    p = subprocess.run([sys.executable, str(BENCH / "_smoke.py"), "--jobs", "2", "--timeout", "240",
                        "--json", str(res)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.is_file(), f"_smoke.py wrote no results (rc {p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}"
    print(f"\nbenchmark smoke runs: {time.perf_counter() - t:.1f} s for {len(SCRIPTS)} scripts, "
          f"load average {os.getloadavg()[0]:.2f}\n{p.stdout}")
    return json.loads(res.read_text()), before, _out_files()


def test_every_script_is_covered():
    assert len(SCRIPTS) >= 19 and "fid_speed.py" in SCRIPTS and "readme_timings.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke(script, smoke_runs):
    results, before, after = smoke_runs
    r = results[script]
    skip = re.search(r"^SMOKE-SKIP: (.+)$", r["out"], re.M)
    if skip and r["rc"] == 0:
        pytest.skip(skip.group(1))
    tail = r["out"][-3000:]
    assert r["rc"] == 0, f"{script} --smoke failed (rc {r['rc']}):\n{tail}"
    assert RATIO.search(r["out"]), f"{script} --smoke printed no ratio line:\n{tail}"
    written = sorted(k for k, v in after.items() if before.get(k) != v)
    assert not written, f"smoke runs wrote into benchmarks/out/: {written}"
