"""Small command-line things that add up (issue 14, point 6): upscale checks its inputs
before it writes anything and enlarges its comparison tiles; ``genlab list`` prints whole,
plain, aligned descriptions; bad values name the type in words; a folder that already
holds a run is a usage error (exit 2); the quickstart header counts "1 epoch"; warnings
are one ``genlab: warning:`` line. (``bn.query``'s labelled answers: tests/models/test_bayesnet.py.)"""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from genlab import cli


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    from genlab.workflow import train_run

    tiny = {"factor": 2, "channels": 8, "n_blocks": 1, "d_channels": (8,)}
    return train_run("srgan", "digits", out=tmp_path_factory.mktemp("sr") / "run", model_config=tiny,
                     train={"max_steps": 2, "batch_size": 16, "progress": False}, report=False).path


def _png(path, hw=(6, 5)):
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((*hw, 3)) * 255).astype(np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- upscale
def test_upscale_checks_every_input_before_it_creates_the_output_folder(sr_run, tmp_path, capsys):
    good = _png(tmp_path / "a.png")
    out = tmp_path / "up"
    assert cli.main(["upscale", str(sr_run), str(tmp_path / "missing.png"), "-o", str(out)]) == 2
    assert "no image at" in capsys.readouterr().err
    assert not out.exists()  # it used to be created, empty
    # a good image before a bad one: still nothing written
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert cli.main(["upscale", str(sr_run), str(good), str(tmp_path / "broken.png"), "-o", str(out)]) == 2
    assert "is not an image Pillow can read" in capsys.readouterr().err
    assert not out.exists()


def test_upscale_comparison_tiles_are_enlarged_for_viewing(sr_run, tmp_path, capsys):
    from PIL import Image

    from genlab.cli_gan import COMPARE_MIN_PX, compare_scale

    _png(tmp_path / "a.png", hw=(7, 9))  # -> 14x18 after x2: tiles scaled by ceil(256 / 14) = 19
    assert cli.main(["upscale", str(sr_run), str(tmp_path / "a.png"), "-o", str(tmp_path / "up")]) == 0
    with Image.open(tmp_path / "up" / "a_x2.png") as im:
        assert im.size == (18, 14)  # the upscaled image itself is not enlarged
    with Image.open(tmp_path / "up" / "a_compare.png") as im:
        w, h = im.size
    s = compare_scale((14, 18))
    assert s == 19 and 14 * s >= COMPARE_MIN_PX
    assert h >= COMPARE_MIN_PX and w >= 3 * 18 * s  # three tiles, each at least 256 px high
    assert compare_scale((512, 600)) == 1  # large images stay as they are


# ----------------------------------------------------------------------------- genlab list
def test_list_prints_whole_plain_aligned_descriptions(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "`" not in out  # RST literals used to show as ``x -> z -> x_hat``
    assert "x -> z -> x_hat" in out
    flat = " ".join(out.split())
    # the VAE says what it is, in a whole sentence (it used to stop at "Bernoulli or")
    assert "vae log_prob=lower_bound Variational autoencoder: Gaussian posterior, Bernoulli or Gaussian " \
           "decoder, beta-VAE, conditional VAE, IWAE likelihood bound (Burda et al. 2016)." in flat
    assert "Learns factor x upscaling" in flat and "module docstring" not in flat
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    sections, cur = {}, None
    for line in lines:
        if not line.startswith(" "):
            cur = line.rstrip(":")
            sections[cur] = []
        elif not line.startswith("   "):
            sections[cur].append(line)
    assert set(sections) == {"models", "datasets", "pipelines"}
    for name, rows in sections.items():
        # every description (and, for models, every log_prob) starts in the same column
        starts = {re.match(r"  \S+\s+", r).end() for r in rows}
        assert len(starts) == 1, (name, starts)
        if name == "models":
            cols = {re.match(r"  \S+\s+log_prob=\S+\s+", r).end() for r in rows}
            assert len(cols) == 1
    # wrapped lines continue under their column
    cont = [line for line in lines if line.startswith("   ")]
    assert cont and all(len(line) - len(line.lstrip()) in
                        {re.match(r"  \S+\s+(log_prob=\S+\s+)?", r).end() for rs in sections.values() for r in rs}
                        for line in cont)


def test_list_summary_rules():
    class Formula:
        """``q(z|x) = N(mu, sigma)``, ``p(z)`` Gaussian.

        More."""

    Formula.__module__ = "genlab.models.vae.model"
    assert cli._summary(Formula).startswith("Variational autoencoder: Gaussian posterior")

    class Two:
        """First sentence with ``code`` and :class:`~genlab.models.VAE` (et al. 2016). Second one.
        still second."""

    assert cli._summary(Two) == "First sentence with code and VAE (et al. 2016)."


# ----------------------------------------------------------------------------- values and exits
@pytest.mark.parametrize("arg, words", [
    ("--latent_dim=abc", "cannot read 'abc' as an integer"),
    ("--beta=x", "cannot read 'x' as a number"),
    ("--hidden=a,b", "cannot read 'a,b' as comma-separated integers (e.g. 512,256)"),
    ("--tensorboard=maybe", "cannot read 'maybe' as true or false (or none)"),
])
def test_bad_values_name_the_type_in_words(arg, words, capsys, tmp_path):
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "r"), arg]) == 2
    err = capsys.readouterr().err
    assert words in err and "<class" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_a_folder_that_already_holds_a_run_is_a_usage_error(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "finished", "model_type": "vae"}))
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]


class _Stop(Exception):
    pass


@pytest.mark.parametrize("epochs, words", [("1", "(1 epoch on the CPU)"), ("3", "(3 epochs on the CPU)")])
def test_quickstart_header_counts_epochs(epochs, words, tmp_path, capsys, monkeypatch):
    import genlab.workflow

    def stop(*a, **k):
        raise _Stop

    monkeypatch.setattr(genlab.workflow, "train_run", stop)
    with pytest.raises(_Stop):
        cli.main(["quickstart", "--out", str(tmp_path / "q"), "--epochs", epochs])
    assert words in capsys.readouterr().out


# ----------------------------------------------------------------------------- warnings
SCIPY_LIKE = ("Ill-conditioned matrix (rcond=1.2e-19): result may not be accurate. This happens "
              "when the covariance of the features is close to singular, which can occur with fewer "
              "samples than feature dimensions; consider more samples or a smaller feature space. "
              "See https://docs.scipy.org/doc/scipy/reference/generated/scipy.linalg.solve.html")


def _run_main_with_warnings(tmp_path, *messages):
    """``cli.main(["list"])`` in a fresh process (no pytest capture) whose command warns."""
    import os
    import subprocess
    import sys

    code = ("import dataclasses, sys, warnings, genlab.cli as c\n"
            "from genlab.commands import COMMANDS\n"
            f"def noisy(a):\n    [warnings.warn(m) for m in {list(messages)!r}]\n    return 0\n"
            "COMMANDS._items['list'] = dataclasses.replace(COMMANDS.get('list'), run=noisy)\n"
            "sys.exit(c.main(['list']))\n")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def test_warnings_are_one_genlab_line_without_source(tmp_path):
    r = _run_main_with_warnings(tmp_path, SCIPY_LIKE, "only 8 valid molecules;\n   computed on those")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        "genlab: warning: Ill-conditioned matrix (rcond=1.2e-19): result may not be accurate. ...",
        "genlab: warning: only 8 valid molecules; computed on those",
    ]


def test_the_warning_format_is_the_commands_only(monkeypatch):
    """Inside main a warning is still a warning (pytest.warns records it); after main the
    format is the caller's again."""
    def noisy(args):
        warnings.warn("inside the command", RuntimeWarning, stacklevel=2)
        return 0

    import dataclasses

    from genlab.commands import COMMANDS

    monkeypatch.setitem(COMMANDS._items, "list", dataclasses.replace(COMMANDS.get("list"), run=noisy))
    before = warnings.formatwarning
    with pytest.warns(RuntimeWarning, match="inside the command"):
        assert cli.main(["list"]) == 0
    assert warnings.formatwarning is before
    assert cli._format_warning(SCIPY_LIKE, RuntimeWarning, "x.py", 3, "warnings.warn(...)") == \
        "genlab: warning: Ill-conditioned matrix (rcond=1.2e-19): result may not be accurate. ...\n"


def test_warning_line_cuts_long_messages_sensibly():
    assert cli.warning_line("short\n  message") == "genlab: warning: short message"
    long_words = "word " * 100
    line = cli.warning_line(long_words)
    assert line.endswith("word ...") and len(line) <= len("genlab: warning: ") + cli.WARNING_MAX_CHARS + 4
    clause = "a" * 80 + "; " + "b " * 100
    assert cli.warning_line(clause) == "genlab: warning: " + "a" * 80 + " ..."
    assert len(cli.warning_line("x" * 1000)) <= len("genlab: warning: ") + cli.WARNING_MAX_CHARS + 4


def test_option_types_are_read_from_the_hints_not_their_text():
    from typing import Literal, Optional

    from genlab.commands._common import _convert
    from genlab.errors import UsageError

    assert _convert("0.5,0.9", tuple[float, ...], "betas") == (0.5, 0.9)
    assert _convert("512,256", tuple[int, ...], "hidden") == (512, 256)
    assert _convert("none", int | None, "max_steps") is None and _convert("7", Optional[int], "k") == 7
    assert _convert("cosine", Literal["constant", "cosine"], "schedule") == "cosine"
    assert _convert("yes", bool, "flag") is True
    # a str field whose name or text holds "int" or "tuple" is still a string
    assert _convert("interior", str, "tuple_of_points") == "interior"
    with pytest.raises(UsageError, match="one of constant, cosine"):
        _convert("linear", Literal["constant", "cosine"], "schedule")
    with pytest.raises(UsageError, match="an integer .or none."):
        _convert("1.5", int | None, "max_steps")
    with pytest.raises(UsageError, match="finite"):
        _convert("nan", float, "lr")


def test_every_command_is_a_registered_module():
    from genlab.commands import COMMANDS

    names = [n for n, _ in COMMANDS.in_order()]
    assert names[:3] == ["list", "train", "sample"] and names[-1] == "quickstart"
    assert {"upscale", "compose", "interpolate", "design", "evaluate", "judge", "report", "data"} <= set(names)
    for name, command in COMMANDS.in_order():
        assert command.run.__module__ == f"genlab.commands.{command.run.__module__.rsplit('.', 1)[1]}"
    assert "PLUGINS" not in vars(cli)


def test_no_model_setting_shares_a_name_with_a_training_setting():
    """``--key=value`` goes to the first config that has the key: a model field named like
    a TrainConfig field (the diffusion noise schedule vs the learning-rate ``schedule``)
    could never be set from the command line. The GANs' ``betas`` is the one shared name,
    on purpose: the GAN step reads the model's and refuses a TrainConfig one."""
    import dataclasses

    import genlab
    from genlab.train import TrainConfig

    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    shared = {name: sorted(train_fields & {f.name for f in dataclasses.fields(genlab.MODELS.get(name).config_class)})
              for name in genlab.MODELS.names()}
    assert {k: v for k, v in shared.items() if v} == {"gan": ["betas"], "srgan": ["betas"]}
