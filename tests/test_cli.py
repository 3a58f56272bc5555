"""The command line: every command end to end on tiny settings, and one-line usage errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from genlab.cli import main, parse_overrides
from genlab.models import VAEConfig
from genlab.train import TrainConfig

TINY = ["--epochs", "1", "--hidden=32,16", "--latent_dim=4", "--batch-size", "128"]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "genlab", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "vae", "--data", "digits", "--out", str(out), *TINY, "--beta=2"]) == 0
    return out


def test_train_writes_a_complete_run(trained):
    info = json.loads((trained / "run.json").read_text())
    assert info["status"] == "finished" and info["model_config"]["beta"] == 2.0
    assert info["model_config"]["hidden"] == [32, 16] and info["train_config"]["epochs"] == 1
    for name in ("model/config.json", "model/model.safetensors", "metrics.jsonl", "eval.json",
                 "report.html", "checkpoints/last.pt"):
        assert (trained / name).is_file(), name
    assert "test_loss" in json.loads((trained / "eval.json").read_text())["metrics"]


def test_sample_to_png_npy_csv(trained, tmp_path, capsys):
    assert main(["sample", str(trained), "-n", "8", "-o", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").stat().st_size > 100
    assert main(["sample", str(trained), "-n", "5", "-o", str(tmp_path / "s.npy"), "--seed", "3"]) == 0
    a = np.load(tmp_path / "s.npy")
    assert a.shape == (5, 1, 8, 8)
    assert main(["sample", str(trained), "-n", "5", "-o", str(tmp_path / "s2.npy"), "--seed", "3"]) == 0
    assert np.array_equal(a, np.load(tmp_path / "s2.npy"))
    assert main(["sample", str(trained), "-n", "2", "-o", str(tmp_path / "s.csv")]) == 0
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",").shape == (2, 64)


def test_report_and_list(trained, capsys):
    (trained / "report.html").unlink()
    assert main(["report", str(trained)]) == 0
    assert (trained / "report.html").is_file()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vae" in out and "autoencoder" in out and "fashion-mnist" in out and "compression" in out


def test_resume_a_finished_run_is_a_no_op(trained):
    import torch

    import genlab

    before = genlab.load(trained).state_dict()
    assert main(["train", "vae", "--out", str(trained), "--resume"]) == 0
    after = genlab.load(trained).state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("args, needle", [
    (["train", "vae", "--data", "digits", "--latnt_dim=3"], "did you mean --latent_dim"),
    (["train", "vae", "--data", "digits", "--latent_dim=abc"], "cannot read 'abc'"),
    (["train", "vae", "--data", "digits", "--latent_dim=0"], "latent_dim must be"),
    (["train", "vae", "--data", "digits", "--optimizer", "adamm"], "invalid choice"),
    (["train", "vea", "--data", "digits"], "did you mean 'vae'"),
    (["train", "vae", "--data", "no-such-data"], "no-such-data"),
    (["train", "vae"], "--data is required"),
    (["train", "vae", "--data", "digits", "--lr=-1"], "lr must be > 0"),
    (["sample", "/nonexistent/run"], "does not exist"),
    (["sample", ".", "-n", "0"], "-n must be >= 1"),
    (["list", "--bogus"], "unrecognized arguments"),
])
def test_usage_errors_are_one_line_exit_2(args, needle, tmp_path):
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]


@pytest.mark.parametrize("cmd", ["train", "sample", "report", "quickstart", "list"])
def test_help(cmd):
    r = run_cli(cmd, "--help")
    assert r.returncode == 0 and "usage: genlab" in r.stdout


def test_overrides_are_typed():
    m, t = parse_overrides(["--latent_dim=3", "--hidden", "8,4", "--grad_clip=none", "--beta=0.5",
                            "--tensorboard=yes"], VAEConfig, TrainConfig)
    assert m == {"latent_dim": 3, "hidden": (8, 4), "beta": 0.5}
    assert t == {"grad_clip": None, "tensorboard": True}


def test_quickstart_runs_end_to_end(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "qs"), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "report:" in out and (tmp_path / "qs" / "report.html").is_file()
    assert (tmp_path / "qs" / "figures" / "samples.png").is_file()


def test_sample_takes_the_models_own_options(trained, tmp_path, capsys):
    assert main(["sample", str(trained), "-n", "4", "-o", str(tmp_path / "t.npy"), "--temperature=0.5"]) == 0
    assert main(["sample", str(trained), "-n", "4", "-o", str(tmp_path / "t2.npy"), "--mean", "false"]) == 0
    assert main(["sample", str(trained), "--temprature=0.5"]) == 2
    assert "did you mean --temperature" in capsys.readouterr().err


def test_judge_list_and_train(tmp_path, capsys):
    from PIL import Image

    assert main(["judge", "list"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            arr = (rng.random((8, 8)) * (255 if cls == "a" else 60)).astype("uint8")
            Image.fromarray(arr).save(tmp_path / "imgs" / cls / f"{i}.png")
    assert main(["judge", "train", "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "j"),
                 "--epochs", "1"]) == 0
    assert (tmp_path / "j" / "judge.json").is_file()
    assert main(["judge", "train", "--data", str(tmp_path / "imgs")]) == 2


def test_bayesnet_on_a_csv_end_to_end(tmp_path, capsys):
    from genlab.models.pgm import read_bif

    bn = read_bif("asia")
    bn.write_samples(bn.sample(2000, generator=0), tmp_path / "asia.csv")
    assert main(["train", "bayesnet", "--data", str(tmp_path / "asia.csv"), "--out", str(tmp_path / "r")]) == 0
    ev = json.loads((tmp_path / "r" / "eval.json").read_text())["metrics"]
    assert np.isfinite(ev["nll_nats"]) and ev["marginal_tvd"] < 0.05
    assert main(["sample", str(tmp_path / "r"), "-n", "50", "-o", str(tmp_path / "s.csv")]) == 0
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert len(lines) == 51 and lines[0] == (tmp_path / "asia.csv").read_text().splitlines()[0]


def test_conditional_flag_is_num_classes_minus_one(tmp_path, capsys):
    """`genlab train diffusion --data fashion-mnist --conditional` (the issue's command):
    a bare flag for num_classes=-1; refused with a conflicting --num_classes or a family
    that has no class-conditional form."""
    out = tmp_path / "c"
    assert main(["train", "vae", "--data", "digits", "--out", str(out), *TINY, "--conditional"]) == 0
    assert json.loads((out / "model" / "config.json").read_text())["config"]["num_classes"] == 10
    capsys.readouterr()
    assert main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "d"), "--conditional",
                 "--num_classes=3"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["train", "bayesnet", "--data", "digits", "--out", str(tmp_path / "e"), "--conditional"]) == 2
    assert "no class-conditional form" in capsys.readouterr().err
