"""genlab never deletes or overwrites a file it did not write (issue 13, points 1-3, 12)."""
import hashlib
import json
import os
from pathlib import Path

import pytest

from genlab import cli
from genlab.errors import OutputExistsError
from genlab.outputs import (RUN_LAYOUT, check_new_files, check_writable, clean_run_temporaries,
                            describe_os_error, prepare_run_folder, remove_run_files)

TINY_TRAIN = ["--hidden=(16,)", "--latent_dim=4", "--limit", "64", "--epochs", "1"]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def a_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "real"
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(out), *TINY_TRAIN]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_quickstart_leaves_another_run_and_the_users_files_alone(a_run, tmp_path, capsys):
    """Point 1: quickstart used to rmtree a folder holding any run (NOTES.md lost, rc 0)."""
    mine = _copy(a_run, tmp_path / "myrun")
    (mine / "NOTES.md").write_text("my notes\n")
    before = _snapshot(mine)
    assert cli.main(["quickstart", "--out", str(mine), "--epochs", "1"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert _snapshot(mine) == before


def test_quickstart_replaces_its_own_run_but_keeps_the_users_files(tmp_path):
    out = tmp_path / "q"
    assert cli.main(["quickstart", "--out", str(out), "--epochs", "1"]) == 0
    (out / "NOTES.md").write_text("keep me\n")
    (out / "figures" / "my_sketch.txt").write_text("mine\n")
    first = json.loads((out / "run.json").read_text())["created"]
    assert cli.main(["quickstart", "--out", str(out), "--epochs", "1"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["origin"] == "quickstart" and info["created"] >= first
    assert (out / "NOTES.md").read_text() == "keep me\n"
    assert (out / "figures" / "my_sketch.txt").read_text() == "mine\n"


def test_train_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    """Points 2-3: a non-empty folder that is not a run (a project, $HOME, /) is never written."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "report.html").write_text("<p>my own report</p>")
    (folder / "figures").mkdir()
    (folder / "figures" / "samples.png").write_bytes(b"not genlab's")
    before = _snapshot(folder)
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(folder), *TINY_TRAIN]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "not a genlab run" in err and len(err.strip().splitlines()) == 1
    assert _snapshot(folder) == before
    for root in ("/", str(Path.home())):
        if Path(root).is_dir() and any(Path(root).iterdir()) and not (Path(root) / "run.json").exists():
            with pytest.raises(OutputExistsError, match="not a genlab run"):
                prepare_run_folder(root)


def test_train_into_an_existing_run_needs_resume_or_overwrite(a_run, tmp_path, capsys):
    run = _copy(a_run, tmp_path / "run")
    (run / "NOTES.md").write_text("mine\n")
    (run / "figures" / "mine.txt").write_text("mine\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")  # a name genlab writes, behind a symlink
    (run / "samples").symlink_to(outside, target_is_directory=True)
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(run), *TINY_TRAIN]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(run), "--overwrite", *TINY_TRAIN]) == 0
    assert (run / "NOTES.md").read_text() == "mine\n" and (run / "figures" / "mine.txt").exists()
    assert (outside / "config.json").read_text() == "{}"
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_remove_run_files_removes_only_the_layout(tmp_path):
    run = tmp_path / "r"
    (run / "model").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "model" / "model.safetensors").write_bytes(b"x")
    (run / "model" / "README.txt").write_text("mine")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    (run / "data.csv").write_text("a,b\n")
    removed = remove_run_files(run)
    assert {p.name for p in removed} == {"run.json", "model.safetensors", "last.pt"}
    assert (run / "model" / "README.txt").exists() and (run / "data.csv").exists()
    assert not (run / "checkpoints").exists()  # emptied by genlab, so removed
    assert set(json.loads(json.dumps(RUN_LAYOUT))) >= {"run.json", "model", "checkpoints"}


def test_run_json_records_the_layout(a_run):
    info = json.loads((a_run / "run.json").read_text())
    assert info["layout"]["checkpoints"] == RUN_LAYOUT["checkpoints"]


def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(f), *TINY_TRAIN]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    assert f.read_text() == "x"


def test_check_new_files_and_writable(tmp_path):
    (tmp_path / "a.json").write_text("1")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_new_files([tmp_path / "a.json"])
    check_new_files([tmp_path / "a.json"], overwrite=True)
    check_new_files([tmp_path / "new.json"])
    with pytest.raises(NotADirectoryError):
        check_writable(tmp_path / "a.json" / "sub")
    assert check_writable(tmp_path / "made").is_dir() and not list((tmp_path / "made").iterdir())


def test_evaluate_json_refuses_an_existing_file_before_any_work(a_run, tmp_path, capsys):
    target = tmp_path / "scores.json"
    target.write_text("precious")
    rc = cli.main(["evaluate", str(a_run), "--metrics", "fid", "-n", "20", "--json", str(target)])
    assert rc == 2 and "already exists" in capsys.readouterr().err
    assert target.read_text() == "precious"


def test_os_errors_are_described_with_path_and_meaning():
    import errno

    e = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/x/checkpoints/last.pt")
    assert describe_os_error(e) == "/runs/x/checkpoints/last.pt: No space left on device (the disk is full: " \
                                   "free space or choose another folder)"


def test_a_failure_after_training_marks_the_run_failed(tmp_path, monkeypatch, capsys):
    """Point 9/12: whatever ends the command, run.json never stays at "running"."""
    import genlab.workflow as workflow

    def boom(*a, **k):
        raise RuntimeError("evaluation exploded")

    monkeypatch.setattr(workflow, "evaluate_model", boom)
    with pytest.raises(RuntimeError):
        cli.main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "r"), *TINY_TRAIN])
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["status"] == "failed" and info["error"] == "evaluation exploded"


def test_stale_temporaries_of_our_own_naming_are_cleaned(tmp_path):
    (tmp_path / "model").mkdir()
    ours = [tmp_path / ".run.json.abc.tmp", tmp_path / "model" / ".model.x1.tmp"]
    theirs = [tmp_path / "draft.tmp", tmp_path / "model" / "notes.tmp"]
    for p in ours + theirs:
        p.write_text("x")
    assert set(clean_run_temporaries(tmp_path)) == set(ours)
    assert all(p.exists() for p in theirs)
