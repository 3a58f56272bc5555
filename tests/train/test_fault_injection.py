"""Fault injection over every registered torch family: a run killed with SIGKILL (between
steps, or halfway through writing a checkpoint) resumes to bit-identical weights; a
damaged newest checkpoint falls back to the previous one; a full disk or a read-only
folder gives one line and a "failed" status.

The kills are deterministic: the victim process kills itself at a chosen step, or in the
middle of writing its n-th checkpoint (half the bytes written to the temporary file), so
the tests do not depend on timing.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import genlab
from genlab.registry import MODELS
from genlab.train.checkpoint import LAST, PREVIOUS, read_checkpoint

DIGITS = "digits"
TEXT = "text"
# every torch family on the generic or adversarial loop, with a tiny config and its data
FAMILIES = {
    "autoencoder": ({"hidden": (16,), "latent_dim": 4, "dropout": 0.1}, DIGITS),
    "vae": ({"hidden": (16,), "latent_dim": 4, "dropout": 0.1}, DIGITS),
    "rbm": ({"hidden": 8, "sample_steps": 2, "ais_betas": 10, "ais_chains": 4}, DIGITS),
    "gan": ({"arch": "mlp", "hidden": (16,), "latent_dim": 4, "ema_decay": 0.9}, DIGITS),
    "srgan": ({"factor": 2, "channels": 4, "n_blocks": 1, "d_channels": (4,)}, DIGITS),
    "rnn": ({"hidden": 8, "layers": 1}, TEXT),
    "lstm": ({"hidden": 8, "layers": 2, "dropout": 0.1, "bptt": 4}, TEXT),
    "gru": ({"hidden": 8, "layers": 1}, TEXT),
    "transformer": ({"d_model": 8, "layers": 1, "heads": 2}, TEXT),
    "seqvae": ({"embed_dim": 4, "enc_hidden": 8, "dec_hidden": 8, "dec_layers": 1, "latent_dim": 2,
                "dropout": 0.1, "word_dropout": 0.2, "kl_warmup_steps": 3}, TEXT),
    "diffusion": ({"channels": 4, "heads": 2, "timesteps": 20, "num_classes": -1, "dropout": 0.1,
                   "ema_decay": 0.9, "sample_steps": 2, "nll_timesteps": 2}, DIGITS),
    # the stage switch at step 3: a kill at step 5 resumes after it, one in the third
    # checkpoint write (step 4) from the checkpoint at the switch, before the latents are scaled
    "latent-diffusion": ({"encoder_channels": (4,), "channels": 4, "heads": 2, "timesteps": 20, "num_classes": -1,
                          "ema_decay": 0.9, "sample_steps": 2, "nll_timesteps": 2, "stage1_steps": 3}, DIGITS),
}
TRAIN = {"epochs": 3, "batch_size": 32, "checkpoint_every": 2, "log_every": 1, "progress": False,
         "seed": 5, "threads": 1, "val_fraction": 0}
# an SRGAN step takes two batches (D's and G's): twice the epochs give it as many steps
TRAIN_FOR = {"srgan": {"epochs": 6}}


def _train(family):
    return {**TRAIN, **TRAIN_FOR.get(family, {})}

CORPUS = ("the quick brown fox jumps over the lazy dog.\n" * 3 + "a stitch in time saves nine.\n") * 4

VICTIM = textwrap.dedent("""
    import json, os, signal, sys
    import genlab
    from genlab.registry import MODELS
    family, cfg, data_kind, run_dir, mode, at, train = sys.argv[1:]
    at = int(at)
    if mode == "write":  # die halfway through writing the at-th checkpoint
        real_fdopen, seen = os.fdopen, [0]
        class HalfWrite:
            def __init__(self, f): self.f = f
            def __enter__(self): return self
            def __exit__(self, *exc): return False
            def write(self, data):
                self.f.write(data[: len(data) // 2]); self.f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        def fdopen(fd, *a, **k):
            f = real_fdopen(fd, *a, **k)
            if ".last.pt." in os.readlink(f"/proc/self/fd/{fd}"):
                seen[0] += 1
                if seen[0] == at:
                    return HalfWrite(f)
            return f
        os.fdopen = fdopen
    class Kill:
        def on_step_end(self, trainer, logs):
            if mode == "step" and trainer.step == at:
                os.kill(os.getpid(), signal.SIGKILL)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fault_data import make_data
    cls = MODELS.get(family)
    m = cls(cls.config_class(**json.loads(cfg)))
    m.fit(make_data(data_kind), json.loads(train), run_dir=run_dir, callbacks=[Kill()])
    sys.exit(3)  # not killed: the parent test fails on this status
""")

DATA_MODULE = textwrap.dedent(f"""
    def make_data(kind):
        if kind == "digits":
            from genlab.data.datasets import load_splits
            return load_splits("digits")["train"].subset(slice(0, 96))
        from genlab.data.text import text_splits
        return text_splits({CORPUS!r}, block_size=16)["train"]
""")


def _make_data(tmp_path: Path, kind: str):
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        import fault_data

        importlib.reload(fault_data)  # the module of this test's tmp_path
        return fault_data.make_data(kind)
    finally:
        sys.path.remove(str(tmp_path))


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _model(family):
    cfg, _ = FAMILIES[family]
    cls = MODELS.get(family)
    return cls(cls.config_class(**cfg))


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"


def _victim(tmp_path, family, run_dir, mode, at):
    (tmp_path / "victim.py").write_text(VICTIM)
    (tmp_path / "fault_data.py").write_text(DATA_MODULE)
    cfg, kind = FAMILIES[family]
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "victim.py"), family, json.dumps(cfg), kind, str(run_dir), mode,
         str(at), json.dumps(_train(family))],
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def test_every_torch_family_is_covered():
    torch_families = {name for name, cls in MODELS.items() if issubclass(cls, torch.nn.Module)}
    assert torch_families == set(FAMILIES)


#: a kill in the middle of a checkpoint write exercises the trainer's writing, the same for
#: every family: in the default suite for one family of each kind of checkpoint (one
#: optimizer, two optimizers, EMA weights, a staged step, a sequence model); all under -m slow
WRITE_KILLED = ("vae", "gan", "diffusion", "latent-diffusion", "seqvae")


def _kill_cases():
    for family in sorted(FAMILIES):
        yield pytest.param(family, "step", 5, id=f"{family}-between-steps")
        marks = () if family in WRITE_KILLED else (pytest.mark.slow,)
        yield pytest.param(family, "write", 3, id=f"{family}-mid-checkpoint-write", marks=marks)


@pytest.mark.parametrize("family,mode,at", list(_kill_cases()))
def test_sigkill_then_resume_is_bit_identical(tmp_path, family, mode, at, one_thread):
    (tmp_path / "fault_data.py").write_text(DATA_MODULE)
    data = _make_data(tmp_path, FAMILIES[family][1])
    ref = _model(family).fit(data, _train(family), run_dir=tmp_path / "ref")
    want = _weights(ref)

    run = tmp_path / "victim"
    _victim(tmp_path, family, run, mode, at)
    ckpts = run / "checkpoints"
    stale = [p for p in ckpts.iterdir() if p.name.endswith(".tmp")]
    if mode == "write":
        assert stale, "the kill should have left a half-written temporary"
    resumed = _model(family).fit(data, _train(family), run_dir=run, resume=True)
    _same(want, _weights(resumed))
    assert not [p for p in ckpts.iterdir() if p.name.endswith(".tmp")], "stale temporaries were not cleaned"
    ref_log = (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()
    got_log = (run / "metrics.jsonl").read_text().splitlines()
    strip = lambda rows: [{k: v for k, v in json.loads(r).items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(got_log) == strip(ref_log)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, family, one_thread, capsys):
    (tmp_path / "fault_data.py").write_text(DATA_MODULE)
    data = _make_data(tmp_path, FAMILIES[family][1])
    want = _weights(_model(family).fit(data, _train(family), run_dir=tmp_path / "ref"))

    run = tmp_path / "victim"  # stopped after 5 steps (max_steps may grow on resume)
    _model(family).fit(data, {**_train(family), "max_steps": 5}, run_dir=run)
    last, prev = run / "checkpoints" / LAST, run / "checkpoints" / PREVIOUS
    prev_step = read_checkpoint(prev)["step"]
    assert prev_step < read_checkpoint(last)["step"] == 5
    raw = bytearray(last.read_bytes())
    raw[len(raw) // 2] ^= 0x80  # one flipped bit in the middle of the state
    last.write_bytes(bytes(raw))

    capsys.readouterr()
    resumed = _model(family).fit(data, _train(family), run_dir=run, resume=True)
    err = capsys.readouterr().err
    assert "fails its SHA-256 check" in err and f"previous checkpoint {prev}" in err
    _same(want, _weights(resumed))  # replayed from the previous checkpoint: still bit-identical


def test_every_checkpoint_damaged_is_one_clear_error(tmp_path, one_thread):
    (tmp_path / "fault_data.py").write_text(DATA_MODULE)
    data = _make_data(tmp_path, DIGITS)
    run = tmp_path / "victim"
    _victim(tmp_path, "vae", run, "step", 5)
    for name in (LAST, PREVIOUS):
        p = run / "checkpoints" / name
        raw = bytearray(p.read_bytes())
        raw[-10] ^= 0x01
        p.write_bytes(bytes(raw))
    with pytest.raises(genlab.errors.GenlabError, match=r"fails its SHA-256 check.*Delete the checkpoints"):
        _model("vae").fit(data, TRAIN, run_dir=run, resume=True)


# ------------------------------------------------------------------ disk full, read-only
def _tmpfs(path: Path, *options: str) -> bool:
    """Mount a small tmpfs at ``path`` (root only); False where that is not allowed."""
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                       capture_output=True)
    return r.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "genlab", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, timeout=300)


def test_disk_full_gives_one_line_and_a_failed_status(tmp_path, monkeypatch):
    """The run folder on a 192 KiB tmpfs (as root; elsewhere writes raise ENOSPC through a
    patched checkpoint writer): the model and checkpoints do not fit."""
    disk = tmp_path / "disk"
    if _tmpfs(disk, "size=192k"):
        try:
            r = _cli(["train", "vae", "--data", "digits", "--out", str(disk / "run"), "--epochs", "2",
                      "--hidden=(64,)", "--latent_dim=4", "--limit", "300"], tmp_path)
            info = json.loads((disk / "run" / "run.json").read_text())
        finally:
            _umount(disk)
        assert r.returncode == 1, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "%|" not in ln]
        assert len(lines) == 1 and "No space left on device" in lines[0], r.stderr[-2000:]
        assert "Traceback" not in r.stderr
        assert info["status"] == "failed" and "No space left" in info["error"]
    else:  # not root: the same path through a patched write
        from genlab import cli
        from genlab.train import checkpoint

        def full(*a, **k):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "checkpoints"))

        monkeypatch.setattr(checkpoint, "encode_checkpoint", full)
        rc = cli.main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "run"), "--epochs", "1",
                       "--hidden=(16,)", "--latent_dim=4", "--limit", "100"])
        assert rc == 1
        info = json.loads((tmp_path / "run" / "run.json").read_text())
        assert info["status"] == "failed" and "No space left" in info["error"]


def test_read_only_folder_gives_one_line(tmp_path):
    ro = tmp_path / "ro"
    if not _tmpfs(ro, "ro", "size=64k"):
        pytest.skip("mounting a read-only tmpfs needs root (root ignores chmod)")
    try:
        r = _cli(["train", "vae", "--data", "digits", "--out", str(ro / "run"), "--epochs", "1",
                  "--hidden=(16,)", "--latent_dim=4", "--limit", "100"], tmp_path)
        q = _cli(["quickstart", "--out", str(ro / "q"), "--epochs", "1"], tmp_path)
    finally:
        _umount(ro)
    for proc in (r, q):
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "Read-only file system" in proc.stderr and str(ro) in proc.stderr
