"""Reports and ``genlab evaluate`` say only what is true (issue 14, point 4): no empty
training panel or gradient settings for closed-form fits, one set of GAN learning rates
(the ones used), the right names for a molecule evaluation's real and floor sets and
feature spaces, a sequence VAE's perplexity marked as a bound, and a warning when FID is
scored on too few images."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from genlab.report import write_report
from genlab.runs import Run
from genlab.workflow import train_run
from genlab.train.config import TrainConfig


def _section(page: str, title: str) -> str:
    """The HTML from ``<h3>title</h3>`` to the end of its column."""
    m = re.search(rf"<h3>{title}</h3>(.*?)</div>", page, flags=re.S)
    assert m, title
    return m.group(1)


def _fake_run(path, model_type: str, model_config: dict, metrics: dict | None = None) -> Run:
    """A finished run folder without a saved model: what the report reads from run.json
    and eval.json only."""
    path.mkdir()
    (path / "run.json").write_text(json.dumps({
        "name": path.name, "model_type": model_type, "data": "x", "status": "finished",
        "model_config": model_config, "train_config": TrainConfig().to_dict()}))
    if metrics is not None:
        (path / "eval.json").write_text(json.dumps({"split": "test", "metrics": metrics}))
    return Run(path)


# ----------------------------------------------------------------------------- closed-form fits
def test_bayesnet_report_has_no_empty_curves_or_gradient_settings(tmp_path, newcomer_csv):
    run = train_run("bayesnet", str(newcomer_csv), out=tmp_path / "bn")
    page = (run.path / "report.html").read_text()
    assert "Training curves" not in page and not (run.path / "figures" / "curves.png").exists()
    assert "steps trained" not in page
    training = _section(page, "Training")
    assert "<table>" not in training and "batch_size" not in training and "lr" not in training.split("such as")[0]
    assert "not by gradient steps" in training
    assert "structure" in _section(page, "Model")  # the settings that did the fitting are shown
    assert "5 edges" in page and "Learned graph" in page


def test_mrf_counts_as_closed_form_and_gradient_models_do_not(tmp_path):
    page = write_report(_fake_run(tmp_path / "mrf", "mrf", {"n_states": 2})).read_text()
    assert "not by gradient steps" in page and "Training curves" not in page
    page = write_report(_fake_run(tmp_path / "rbm", "rbm", {"hidden": 8})).read_text()
    assert "not by gradient steps" not in page and "batch_size" in _section(page, "Training")


# ----------------------------------------------------------------------------- GAN learning rates
def test_gan_report_shows_the_learning_rates_it_used(tmp_path):
    run = train_run("gan", "digits", out=tmp_path / "gan",
                    train={"epochs": 1, "max_steps": 3, "batch_size": 64, "progress": False},
                    model_config={"arch": "mlp", "hidden": (32, 16), "latent_dim": 4, "lr_d": 1e-4})
    page = (run.path / "report.html").read_text()
    training, model = _section(page, "Training"), _section(page, "Model")
    rows = dict(re.findall(r"<tr><th>([^<]+)</th><td[^>]*>([^<]*)</td></tr>", training))
    assert rows["lr_g"] == "2.000e-04" and rows["lr_d"] == "1.000e-04" and rows["betas"] == "(0.5, 0.999)"
    assert "lr" not in rows  # TrainConfig's lr (1e-3) and betas (0.9, 0.999) are not used by the loop
    assert "0.9, 0.999" not in page and "lr_g" not in model and "betas" not in model


def test_gan_rates_left_to_train_config_show_train_config_values(tmp_path):
    run = _fake_run(tmp_path / "g", "gan", {"lr_g": None, "lr_d": 3e-4, "betas": None, "latent_dim": 4})
    rows = dict(re.findall(r"<tr><th>([^<]+)</th><td[^>]*>([^<]*)</td></tr>",
                           _section(write_report(run).read_text(), "Training")))
    assert rows["lr_g"] == "0.001" and rows["lr_d"] == "3.000e-04" and rows["betas"] == "(0.9, 0.999)"


# ----------------------------------------------------------------------------- sequence VAE bound
def test_seqvae_perplexity_is_labelled_an_upper_bound(tmp_path):
    vocab = ["<pad>", "<bos>", "<eos>"] + list("abcdefghijklmnopqrstuvwxyz")
    assert len(vocab) == 29
    run = _fake_run(tmp_path / "svae", "seqvae", {"vocab": vocab, "latent_dim": 16},
                    {"test_kl": 0.4, "nll_per_token": 7.478, "bits_per_token": 10.79, "perplexity": 1769.0})
    page = write_report(run).read_text()
    assert "perplexity (upper bound)" in page and "nll_per_token (upper bound)" in page
    assert "upper bounds" in page and "29-token vocabulary" in page
    assert "<th>perplexity</th>" not in page
    lm = _fake_run(tmp_path / "lm", "lstm", {"vocab": vocab}, {"perplexity": 5.0})  # exact likelihood
    assert "upper bound" not in write_report(lm).read_text()


# ----------------------------------------------------------------------------- evaluate
def test_small_fake_sets_get_a_fid_warning(tmp_path, capsys):
    from genlab.cli import main
    from genlab.data.datasets import load_splits

    np.save(tmp_path / "fake.npy", load_splits("digits")["train"].x[:64].numpy())
    assert main(["evaluate", "--real", "digits", "--fake", str(tmp_path / "fake.npy"), "--metrics", "fid,kid",
                 "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"note: FID and KID on only 64 generated images: both are biased", out)
    assert "2,000" in out
    assert json.loads((tmp_path / "r.json").read_text())["notes"]


def test_sample_note_rules():
    from genlab.evaluation.evaluate import MIN_FID_SAMPLES, small_sample_note

    assert small_sample_note(MIN_FID_SAMPLES, ["fid"]) is None
    assert small_sample_note(10, ["prdc"]) is None
    assert "FID on only 10" in small_sample_note(10, ["fid", "prdc"])


def test_molecule_words_and_feature_spaces():
    from genlab.evaluation.evaluate import describe_sets, molecule_feature_space

    assert molecule_feature_space("FCD/Test") == "ChemNet activations"
    assert molecule_feature_space("FCD/TestSF") == "ChemNet activations"
    for m in ("logP", "weight", "QED", "SA"):
        assert molecule_feature_space(m).startswith("RDKit descriptor"), m
        assert "ChemNet" not in molecule_feature_space(m)
    assert "Morgan" in molecule_feature_space("SNN/Test") and "canonical" in molecule_feature_space("unique@1000")
    rec = describe_sets({"n_real": 200, "n_floor": 200}, "molecule")
    assert rec["compared"].startswith("against 200 test molecules (floor: 200 held-out validation molecules")
    assert "image" not in rec["compared"]
    assert describe_sets({"n_real": 50, "n_floor": None}, "toy")["compared"] == \
        "against 50 real test points (floor: the real test points scored the same way)"


@pytest.mark.filterwarnings("ignore:unique@30")
def test_molecule_evaluate_names_its_sets(tmp_path, capsys):
    pytest.importorskip("rdkit")
    from genlab.cli import main

    rng = np.random.default_rng(1)
    chains = list(dict.fromkeys("".join(rng.choice(list("CCCCCCNO"), int(rng.integers(3, 9))))
                                for _ in range(400)))
    smi = tmp_path / "mols.smi"
    smi.write_text("SMILES\n" + "\n".join(chains) + "\n")
    run = train_run("lstm", str(smi), out=tmp_path / "run", model_config={"hidden": 16, "layers": 1},
                    train={"epochs": 2, "batch_size": 64, "progress": False, "threads": 1}, report=False)
    capsys.readouterr()
    assert main(["evaluate", str(run.path), "-n", "30"]) == 0
    out = capsys.readouterr().out
    first = next(line for line in out.splitlines() if line.startswith("30 samples of"))
    assert re.search(r"against \d+ test molecules \(floor: \d+ held-out validation molecules", first), first
    assert "image" not in first
    ev = json.loads((run.path / "eval.json").read_text())["evaluation"]
    spaces = {r["metric"]: r["feature_space"] for r in ev["rows"]}
    assert spaces["logP"].startswith("RDKit descriptor") and spaces["weight"].startswith("RDKit descriptor")
    assert spaces["FCD/Test"] == "ChemNet activations"
    assert ev["real_what"] == "test molecules" and "validation" in ev["floor_what"]
    page = (run.path / "report.html").read_text()
    assert "test molecules" in page and "real test images" not in page and "RDKit / ChemNet" not in page
