"""Divergence and resume (issue 13, points 7, 8, 9): a loss that explodes stops the run with
a checkpoint that predates it; the advice it gives (a lower learning rate) can be followed
with --resume; options a loop cannot honour are refused."""
import json
import math

import pytest
import torch

from genlab import cli
from genlab.errors import TrainingDivergedError
from genlab.models import GAN
from genlab.train.checkpoint import read_checkpoint
from genlab.train.guard import ExplosionGuard

CORPUS = ("the quick brown fox jumps over the lazy dog.\n" * 3 + "a stitch in time saves nine.\n") * 12


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text(CORPUS)
    return p


def test_the_guard_lets_ordinary_curves_through():
    g = ExplosionGuard()
    torch.manual_seed(0)
    loss = 5.0
    for step in range(2000):  # a decreasing curve with noise, then GAN-like swings near 0
        loss = max(0.01, loss * 0.998) * float(1 + 0.3 * torch.randn(()))
        assert not g.explodes(abs(loss)), step
    for v in (0.001, 2.5, 0.0005, 4.0, -3.0, 6.0):
        assert not g.explodes(v)


def test_the_guard_flags_a_jump_and_survives_a_resume():
    g = ExplosionGuard()
    for v in [2.0, 1.9, 2.1, 1.8, 2.0, 1.7, 1.9, 1.8]:
        assert not g.explodes(v)
    assert g.explodes(1.5e7)
    h = ExplosionGuard()
    h.load_state_dict(g.state_dict())
    assert h.threshold() == g.threshold() and h.explodes(1.5e7)


def test_an_lstm_at_a_huge_lr_is_stopped_and_can_resume_with_a_lower_one(tmp_path, corpus, capsys):
    """Point 9: at lr=1e6 the LSTM used to finish with loss 1.5e7, then crash in evaluation
    (OverflowError) leaving run.json at "running"."""
    out = tmp_path / "run"
    args = ["train", "lstm", "--data", str(corpus), "--out", str(out), "--hidden=16", "--layers=1",
            "--data-opt", "block_size=16", "--epochs", "3", "--batch-size", "16"]
    assert cli.main([*args, "--lr", "1e6", "--checkpoint_every=1"]) == 1
    err = capsys.readouterr().err
    assert "exploded" in err and "--resume" in err and len(err.strip().splitlines()) == 1
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "diverged"
    bad = next(json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()
               if json.loads(r).get("event") == "diverged")
    ck = out / "checkpoints" / "last.pt"
    if ck.exists():  # the kept checkpoint predates the weights whose loss failed
        state = read_checkpoint(ck)
        assert state["step"] < bad["step"] - 1
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert cli.main(["train", "lstm", "--out", str(out), "--resume", "--lr", "3e-3"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["train_config"]["lr"] == 3e-3
    assert info["history"][-1]["changed"]["lr"] == [1e6, 3e-3]
    m = json.loads((out / "eval.json").read_text())["metrics"]
    assert math.isfinite(m["nll_per_token"])


def test_resume_refuses_what_cannot_change(tmp_path, corpus, capsys):
    """Point 7: --seed, --data and model settings used to be silently ignored on resume."""
    out = tmp_path / "run"
    assert cli.main(["train", "lstm", "--data", str(corpus), "--out", str(out), "--hidden=8", "--layers=1",
                     "--data-opt", "block_size=16", "--epochs", "1"]) == 0
    capsys.readouterr()
    for extra, word in ((["--seed", "4"], "seed"), (["--data", "digits"], "trained on"),
                        (["--hidden=32"], "model settings"), (["--batch-size", "7"], "batch_size")):
        assert cli.main(["train", "lstm", "--out", str(out), "--resume", *extra]) == 2
        err = capsys.readouterr().err
        assert word in err and len(err.strip().splitlines()) == 1, err
    assert cli.main(["train", "lstm", "--out", str(out), "--resume", "--epochs", "2"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["train_config"]["epochs"] == 2 and info["history"][-1]["changed"] == {"epochs": [1, 2]}


def test_gan_lr_is_honoured_or_refused(tmp_path, digits_splits, capsys):
    """Point 8: a GAN's --lr used to be ignored (lr_g/lr_d stayed at 2e-4)."""
    out = tmp_path / "g"
    assert cli.main(["train", "gan", "--data", "digits", "--out", str(out), "--arch=mlp", "--hidden=(16,)",
                     "--latent_dim=4", "--limit", "64", "--epochs", "1", "--lr", "5e-4"]) == 0
    mc = json.loads((out / "run.json").read_text())["model_config"]
    assert mc["lr_g"] == mc["lr_d"] == 5e-4
    # a GAN's learning rates may change on resume (the advice after a divergence); its shape not
    assert cli.main(["train", "gan", "--out", str(out), "--resume", "--epochs", "2", "--lr_g=1e-4"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["model_config"]["lr_g"] == 1e-4 and info["history"][-1]["changed"]["lr_g"] == [5e-4, 1e-4]
    assert read_checkpoint(out / "checkpoints" / "last.pt")["optimizers"]["generator"]["param_groups"][0]["lr"] == 1e-4
    capsys.readouterr()
    assert cli.main(["train", "gan", "--out", str(out), "--resume", "--latent_dim=8"]) == 2
    assert "cannot change model settings (--latent_dim)" in capsys.readouterr().err
    small = digits_splits["train"].subset(slice(0, 64))
    with pytest.raises(ValueError, match="lr=0.01 would be ignored"):
        GAN(arch="mlp", hidden=(16,), latent_dim=4).fit(small, {"lr": 0.01, "progress": False})
    with pytest.raises(ValueError, match=r"betas=\(0.8, 0.99\) would be ignored"):
        GAN(arch="mlp", hidden=(16,), latent_dim=4).fit(small, {"betas": (0.8, 0.99), "progress": False})
    # the one loop honours every other TrainConfig field for GANs (see tests/models/test_gan.py)
    for field, value in (("eval_every", 2), ("monitor", "val_fid")):
        with pytest.raises(ValueError, match=f"^{field}=.*not supported for GAN training: "):
            GAN(arch="mlp", hidden=(16,), latent_dim=4).fit(small, {field: value, "progress": False})


def test_a_gan_at_a_huge_lr_is_stopped(tmp_path, digits_splits):
    """Point 9: at lr_g=lr_d=1e6 a GAN used to end "finished" with weights of 1e7."""
    small = digits_splits["train"].subset(slice(0, 128))
    g = GAN(arch="mlp", hidden=(32,), latent_dim=4, lr_g=1e6, lr_d=1e6)
    with pytest.raises(TrainingDivergedError, match="loss|gradient"):
        g.fit(small, {"epochs": 20, "batch_size": 16, "progress": False}, run_dir=tmp_path)
    ck = tmp_path / "checkpoints" / "last.pt"
    if ck.exists():
        state = read_checkpoint(ck)
        assert max(float(v.abs().max()) for v in state["model"].values() if v.is_floating_point()) < 1e6
