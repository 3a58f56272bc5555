"""Progress on every long step, also off a terminal (issue 14, points 2 and 3)."""
import io
import json
import os
import subprocess
import sys

from genlab import cli
from genlab.progress import Phases, Progress, task, tick


def test_line_mode_writes_plain_lines_with_counts_and_an_end():
    out = io.StringIO()
    p = Progress(4, "test NLL", "example", stream=out, every_s=0)
    for _ in range(4):
        p.update(1)
    p.set_postfix(loss="1.25")
    p.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 5
    assert lines[0].startswith("test NLL: 1/4 examples (25%)") and "left" in lines[0]
    assert lines[-1].startswith("test NLL: 4/4 examples (100%), loss 1.25") and lines[-1].endswith("done")


def test_a_short_step_off_a_terminal_prints_nothing():
    out = io.StringIO()
    with Progress(1000, "train vae", "step", stream=out, every_s=60) as p:
        p.update(1000)
    assert out.getvalue() == ""


def test_tick_advances_the_innermost_task_and_is_free_without_one():
    tick(5)  # no task: nothing happens
    with task("outer", 10, enabled=False) as outer:
        tick(2)
        with task("inner", 3, enabled=False) as inner:
            tick(3)
        tick(1)
    assert (outer.n, inner.n) == (3, 3)


def test_phases_add_up():
    ph = Phases()
    with ph("train"):
        pass
    with ph("train"):
        pass
    assert set(ph.record()) == {"train"} and ph.summary().startswith(f"{ph.total():.1f} s: train ")


def test_train_off_a_terminal_logs_progress_lines_and_phases(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "w") as f:
        r = subprocess.run([sys.executable, "-m", "genlab", "train", "vae", "--data", "digits", "--out",
                            str(tmp_path / "run"), "--epochs", "2", "--hidden=(16,)", "--latent_dim=4",
                            "--likelihood=gaussian"], stdout=f, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "GENLAB_PROGRESS_EVERY_S": "0.000001"},
                           timeout=300)
    text = log.read_text()
    assert r.returncode == 0, text
    assert "\r" not in text
    steps = [ln for ln in text.splitlines() if ln.startswith("train vae: ")]
    assert steps and "/20 steps" in steps[0] and "loss" in steps[-1] and steps[-1].endswith("done")
    assert any(ln.startswith("test NLL (IWAE bound, k=200): ") for ln in text.splitlines())
    for said in ("loading digits", "training vae on", "test metrics on", "writing the report"):
        assert said in text
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert set(info["phases_s"]) == {"load data", "train", "test metrics", "report"}
    assert f"finished in {info['command_wall_s']} s (load data" in text


def test_resume_on_a_finished_run_keeps_everything(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--hidden=(16,)", "--latent_dim=4", "--limit", "64"]
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(out), "--epochs", "1", *args]) == 0
    ev = json.loads((out / "eval.json").read_text())
    ev["evaluation"] = {"rows": [{"metric": "fid", "value": 12.0}]}  # what genlab evaluate adds
    (out / "eval.json").write_text(json.dumps(ev))
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert cli.main(["train", "vae", "--out", str(out), "--resume"]) == 0
    said = capsys.readouterr().out
    assert "is finished (1 step, 1 epoch): nothing to train; pass --epochs 2 or more" in said
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert cli.main(["train", "vae", "--out", str(out), "--resume", "--epochs", "2"]) == 0
    ev2 = json.loads((out / "eval.json").read_text())
    assert ev2["evaluation"] == ev["evaluation"] and "before the run was resumed" in ev2["evaluation_stale"]
