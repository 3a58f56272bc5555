"""The trainer: determinism, resume after SIGKILL, NaN guard, early stopping, schedules."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import genlab
from genlab.models import TorchGenerativeModel
from genlab.data import Dataset
from genlab.errors import TrainingDivergedError
from genlab.train import TrainConfig, Trainer
from genlab.train.checkpoint import read_checkpoint
from genlab.train.schedule import lr_factor


class Scalar(TorchGenerativeModel):
    """A one-parameter model with a controllable loss, for trainer tests (not registered)."""

    model_type = "scalar-test"

    def __init__(self, nan_at=None):
        super().__init__(genlab.base.Config())
        self.nan_at, self.calls = nan_at, 0
        self.build()
        self.built = True

    def build(self):
        self.w = torch.nn.Parameter(torch.zeros(()))

    def prepare(self, dataset):
        pass

    def forward(self, batch):
        self.calls += self.training
        target = 1.0 if self.training else 0.0  # training pulls w to 1, validation prefers 0
        loss = (self.w - target) ** 2 + 0 * batch["x"].mean()
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return {"loss": loss}


def table(n=64):
    return Dataset(torch.randn(n, 3, generator=torch.Generator().manual_seed(0)), kind="table")


def test_train_config_validates():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adamm")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError):
        TrainConfig(augment="flip,twirl")


def test_lr_schedules():
    c = TrainConfig(schedule="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, c, 10, 110) == pytest.approx(0.1)
    assert lr_factor(9, c, 10, 110) == pytest.approx(1.0)
    assert lr_factor(10, c, 10, 110) == pytest.approx(1.0)
    assert lr_factor(60, c, 10, 110) == pytest.approx(0.55)
    assert lr_factor(110, c, 10, 110) == pytest.approx(0.1)
    s = TrainConfig(schedule="step", step_size=2, gamma=0.5)
    assert [lr_factor(e * 10, s, 10, 100) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop"])
def test_each_optimizer_reduces_the_loss(opt):
    m = Scalar()
    Trainer({"optimizer": opt, "lr": 0.05, "epochs": 20, "batch_size": 16, "progress": False,
             "val_fraction": 0}).fit(m, table())
    assert abs(m.w.item() - 1) < 0.5, m.w.item()


def test_gradient_clipping_bounds_the_update():
    m = Scalar()
    Trainer({"optimizer": "sgd", "momentum": 0, "lr": 1.0, "max_steps": 1, "grad_clip": 0.01,
             "progress": False, "val_fraction": 0}).fit(m, table())
    assert m.w.item() == pytest.approx(0.01)  # gradient -2 clipped to norm 0.01


def test_nan_loss_stops_with_step_and_keeps_checkpoint(tmp_path):
    m = Scalar(nan_at=7)
    with pytest.raises(TrainingDivergedError, match=r"step 7 .*checkpoint"):
        Trainer({"batch_size": 16, "epochs": 5, "checkpoint_every": 2, "progress": False,
                 "val_fraction": 0}).fit(m, table(), run_dir=tmp_path)
    # the loss of step 7 is computed from the weights after step 6: the checkpoint of step 6
    # holds them, so the one kept is the one before it (step 4), verified finite
    state = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and torch.isfinite(state["model"]["w"])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["event"] == "diverged" and rows[-1]["step"] == 7


def test_early_stopping_restores_best_weights(tmp_path):
    m = Scalar()
    seen = []

    class Watch:
        def on_epoch_end(self, trainer, row):
            seen.append((row["val_loss"], trainer.model.w.item()))

    Trainer({"optimizer": "sgd", "lr": 0.05, "momentum": 0, "batch_size": 16, "epochs": 50,
             "patience": 2, "progress": False}).fit(m, table(), val=table(16), run_dir=tmp_path,
                                                    callbacks=[Watch()])
    assert len(seen) == 3  # best at the first evaluation, then two worse ones
    assert m.w.item() == pytest.approx(seen[0][1])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "early_stop" for r in rows)


def test_same_seed_same_weights_different_seed_differs(digits_small):
    cfg = {"epochs": 2, "batch_size": 32, "progress": False, "augment": "flip,shift:1,noise:0.05"}
    def fit(seed):
        return genlab.models.VAE(hidden=(32, 16), latent_dim=4, dropout=0.1).fit(digits_small, {**cfg, "seed": seed})
    a, b, c = fit(0), fit(0), fit(1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))


def test_metrics_log_and_no_temp_files(tmp_path, digits_small):
    genlab.models.Autoencoder(hidden=(32,), latent_dim=4).fit(
        digits_small, {"epochs": 2, "batch_size": 32, "log_every": 2, "checkpoint_every": 3,
                       "progress": False}, run_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert len(val) == 2 and all("val_loss" in r for r in val)
    assert [r["step"] for r in train] == list(range(2, 16, 2)) + [15] or train[-1]["step"] == 16
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_resume_with_other_settings_is_refused(tmp_path, digits_small):
    m = genlab.models.VAE(hidden=(16,), latent_dim=2)
    m.fit(digits_small, {"epochs": 1, "progress": False}, run_dir=tmp_path)
    for change in ({"seed": 3}, {"batch_size": 64}, {"optimizer": "sgd"}, {"augment": "flip"}):
        with pytest.raises(ValueError, match=f"cannot resume .*{next(iter(change))}=.*cannot change on resume"):
            genlab.models.VAE(hidden=(16,), latent_dim=2).fit(
                digits_small, {"epochs": 1, "progress": False, **change}, run_dir=tmp_path, resume=True)


def test_resume_applies_a_new_lr_and_more_epochs(tmp_path, digits_small):
    """lr and epochs may change on resume (e.g. a lower lr after a divergence): the optimizer
    runs at the new lr from the first resumed step, and the extra epochs are trained."""
    m = genlab.models.VAE(hidden=(16,), latent_dim=2)
    m.fit(digits_small, {"epochs": 1, "progress": False}, run_dir=tmp_path)
    m2 = genlab.models.VAE(hidden=(16,), latent_dim=2)
    seen = []

    class Watch:
        def on_step_end(self, trainer, logs):
            seen.append((trainer.step, trainer.optimizer.param_groups[0]["lr"]))

    t = Trainer({"epochs": 3, "lr": 1e-4, "progress": False})
    t.fit(m2, digits_small, run_dir=tmp_path, resume=True, callbacks=[Watch()])
    steps_per_epoch = seen[0][0] - 1
    assert seen[0][1] == pytest.approx(1e-4) and seen[-1][0] == 3 * steps_per_epoch
    assert t.resume_changes == {"epochs": [1, 3], "lr": [1e-3, 1e-4]}


def test_a_callback_stop_checkpoints_its_step(tmp_path):
    """A run stopped by a callback (e.g. a time budget) resumes from where it stopped."""
    from genlab.train.checkpoint import load_checkpoint

    class StopAt:
        def on_step_end(self, trainer, logs):
            trainer.should_stop = trainer.step >= 7

    cfg = {"epochs": 50, "batch_size": 8, "checkpoint_every": 100, "progress": False, "val_fraction": 0}
    Scalar().fit(table(), cfg, run_dir=tmp_path, callbacks=[StopAt()])
    assert load_checkpoint(tmp_path / "checkpoints")["step"] == 7


def test_a_callback_can_set_the_lr_and_a_resume_keeps_it(tmp_path):
    """``Trainer.set_lr`` from a callback changes the updates, the log and the checkpoint."""
    from genlab.train.checkpoint import load_checkpoint

    class Halve:
        def on_step_end(self, trainer, logs):
            if trainer.step == 4:
                trainer.set_lr(0.05)
            trainer.should_stop = trainer.step >= 8

    cfg = {"epochs": 50, "batch_size": 8, "lr": 0.1, "optimizer": "sgd", "momentum": 0.0, "grad_clip": None, "checkpoint_every": 100,
           "progress": False, "val_fraction": 0, "log_every": 1, "schedule": "constant"}
    m, t = Scalar(), Trainer(cfg)
    t.fit(m, table(), run_dir=tmp_path, callbacks=[Halve()])
    lrs = [r["lr"] for r in t.history if r["split"] == "train"]
    assert lrs[:4] == [0.1] * 4 and lrs[4:8] == [0.05] * 4
    # plain SGD on (w-1)^2: w_{k+1} - 1 = (1 - 2 lr)(w_k - 1), from w_0 = 0
    assert m.w.item() == pytest.approx(1 - 0.8 ** 4 * 0.9 ** 4, abs=1e-6)
    ck = load_checkpoint(tmp_path / "checkpoints")
    assert ck["schedulers"]["model"]["base_lrs"] == [0.05]

    class Stop:
        def on_step_end(self, trainer, logs):
            trainer.should_stop = trainer.step >= 10

    t2 = Trainer(cfg)
    t2.fit(Scalar(), table(), run_dir=tmp_path, resume=True, callbacks=[Stop()])
    assert [r["lr"] for r in t2.history if r["split"] == "train"][-2:] == [0.05, 0.05]
    with pytest.raises(RuntimeError, match="while fit"):
        Trainer(cfg).set_lr(0.1)
    with pytest.raises(ValueError, match="positive"):
        t2.set_lr(-1.0)


SCRIPT = textwrap.dedent("""
    import sys, time
    import torch, genlab
    from genlab.data.datasets import load_splits

    class Slow:  # give the parent time to kill us mid-run
        def on_step_end(self, trainer, logs):
            time.sleep(float(sys.argv[3]))

    splits = load_splits("digits")
    m = genlab.models.VAE(hidden=(32, 16), latent_dim=4, dropout=0.1)
    m.fit(splits["train"], {"epochs": 4, "batch_size": 32, "checkpoint_every": 7, "progress": False,
                            "seed": 3, "augment": "flip,shift:1,noise:0.05", "schedule": "cosine",
                            "warmup_steps": 5, "patience": 3, "threads": 1},
          val=splits["val"], run_dir=sys.argv[1], resume=sys.argv[2] == "1", callbacks=[Slow()])
    m.save(sys.argv[1] + "/final")
""")


def _run(script, run_dir, resume, delay):
    return subprocess.Popen([sys.executable, str(script), str(run_dir), "1" if resume else "0", str(delay)],
                            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


# SIGKILL is covered for every family by tests/train/test_fault_injection.py; the polite
# SIGTERM stop (checkpoint, then exit) only here
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGKILL, marks=pytest.mark.slow), signal.SIGTERM])
def test_kill_then_resume_is_bit_identical(tmp_path, sig):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    ref = _run(script, tmp_path / "ref", False, 0)
    victim = _run(script, tmp_path / "victim", False, 0.02)
    ckpt = tmp_path / "victim" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the run is well past its first checkpoints
        log = tmp_path / "victim" / "metrics.jsonl"
        if ckpt.exists() and log.exists() and len(log.read_text().splitlines()) >= 5:
            break
        time.sleep(0.02)
    logged = len((tmp_path / "victim" / "metrics.jsonl").read_text().splitlines())
    victim.send_signal(sig)
    assert victim.wait() != 0
    assert not (tmp_path / "victim" / "final").exists(), "the run ended before it was killed"
    killed_at = read_checkpoint(ckpt)["step"]
    assert 0 < killed_at < 160
    if sig == signal.SIGTERM:  # a polite stop checkpoints the step it reached
        rows = (tmp_path / "victim" / "metrics.jsonl").read_text().splitlines()
        assert len(rows) >= logged and killed_at >= json.loads(rows[-1])["step"]
    assert _run(script, tmp_path / "victim", True, 0).wait() == 0
    assert ref.wait() == 0
    a = genlab.load(tmp_path / "ref" / "final").state_dict()
    b = genlab.load(tmp_path / "victim" / "final").state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k != "time"}  # noqa: E731
                       for l in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(tmp_path / "ref") == strip(tmp_path / "victim")


def test_a_small_model_trains_on_one_thread_and_the_setting_is_restored(digits_small):
    """Measured (benchmarks/threads.py): below 500k parameters one thread is faster on a
    2-core machine; a given --threads always wins; torch's setting is restored after."""
    before = torch.get_num_threads()
    seen = []

    class Watch:
        def on_step_end(self, trainer, logs):
            seen.append(torch.get_num_threads())

    genlab.models.VAE(hidden=(16,), latent_dim=2).fit(digits_small, {"epochs": 1, "progress": False},
                                                      callbacks=[Watch()])
    assert set(seen) == {1} and torch.get_num_threads() == before
    seen.clear()
    genlab.models.VAE(hidden=(16,), latent_dim=2).fit(digits_small, {"epochs": 1, "progress": False,
                                                                     "threads": 2}, callbacks=[Watch()])
    assert set(seen) == {2}
    torch.set_num_threads(before)
