"""The run-level suite: every registered model goes through a whole run the way a user's
would — ``train_run`` into a run folder (test metrics, report), ``write_samples`` to every
format its tags say it can be written in (each file read back), ``evaluate_run`` where an
evaluator applies (a clear refusal where none does) and a resume to a second epoch.

It is driven by the registries: the report must hold every section
``REPORT_SECTIONS.applicable`` names (and no figure that failed to draw), the formats are
``writers_for(model)``, the evaluator ``EVALUATORS.applicable``. A new family joins by
adding a case to ``CASES`` (the first test fails until it does); a new writer, section or
evaluator is exercised here as soon as a family's tags make it apply.
"""
import csv
import json

import numpy as np
import pytest
import torch

import genlab
from genlab.capabilities import EVALUATORS, REPORT_SECTIONS
from genlab.errors import DataError
from genlab.evaluation import evaluate_run
from genlab.report import write_report
from genlab.runs import Run
from genlab.sample_io import write_samples, writers_for
from genlab.workflow import train_run

TINY = {"hidden": (16,), "latent_dim": 2}
TEXT = ("the quick brown fox jumps over the lazy dog.\n" * 3 + "a stitch in time saves nine.\n") * 6
ROWS = {"limit": 200}
# case -> (model name, data: a dataset name or a file the fixture writes, model config, data options)
CASES = {
    "autoencoder": ("autoencoder", "digits", {**TINY}, ROWS),
    "vae": ("vae", "digits", {**TINY}, ROWS),
    "vae-table-ring8": ("vae", "ring8", {**TINY}, {}),
    "gan": ("gan", "digits", {"arch": "mlp", **TINY}, ROWS),
    "srgan": ("srgan", "digits", {"factor": 2, "channels": 8, "n_blocks": 1, "d_channels": (8,)}, ROWS),
    "mrf": ("mrf", "digits", {"max_iter": 3, "gibbs_sweeps": 3}, ROWS),
    "rbm": ("rbm", "digits", {"hidden": 16, "sample_steps": 5, "ais_betas": 20, "ais_chains": 5}, ROWS),
    "bayesnet": ("bayesnet", "asia.csv", {"max_indegree": 2}, {}),
    "rnn": ("rnn", "corpus.txt", {"hidden": 16, "layers": 1}, {"block_size": 16}),
    "lstm": ("lstm", "corpus.txt", {"hidden": 16, "layers": 1}, {"block_size": 16}),
    "gru": ("gru", "corpus.txt", {"hidden": 16, "layers": 1}, {"block_size": 16}),
    "transformer": ("transformer", "corpus.txt", {"d_model": 16, "layers": 1, "heads": 2}, {"block_size": 16}),
    "seqvae": ("seqvae", "names", {"embed_dim": 8, "enc_hidden": 16, "dec_hidden": 16, "dec_layers": 1,
                                   "latent_dim": 2}, {"limit": 200}),
    "diffusion": ("diffusion", "digits", {"channels": 8, "heads": 2, "timesteps": 50, "sample_steps": 5,
                                          "nll_timesteps": 5, "num_classes": -1}, ROWS),
    "diffusion-table-ring8": ("diffusion", "ring8", {"hidden": 16, "depth": 1, "timesteps": 50, "sample_steps": 5,
                                                      "nll_timesteps": 5}, {}),
    "latent-diffusion": ("latent-diffusion", "digits", {"encoder_channels": (8,), "channels": 8, "heads": 2,
                                                        "timesteps": 50, "sample_steps": 5, "nll_timesteps": 5,
                                                        "num_classes": -1}, ROWS),
    # text-to-image: evaluated with the session's small caption judges (tests/conftest.py)
    "diffusion-text": ("diffusion", "captioned-shapes", {"channels": 8, "heads": 2, "timesteps": 50, "sample_steps": 5,
                                                         "nll_timesteps": 5, "text_dim": 16, "text_layers": 1},
                       {"n_train": 640, "n_val": 64, "n_test": 64}),
    "lstm-molecules": ("lstm", "mols.smi", {"hidden": 16, "layers": 1}, {}),
    "lstm-music": ("lstm", "folk", {"hidden": 16, "layers": 1}, {"tunes": 30, "limit": 60}),
    # packed, memory-mapped data (every split read row by row: GENLAB_PACK_IN_MEMORY_BYTES=0)
    "vae-packed": ("vae", "digits.gldata", {**TINY}, {}),
    "lstm-packed": ("lstm", "corpus.gldata", {"hidden": 16, "layers": 1}, {}),
}
TRAIN = {"epochs": 1, "batch_size": 64, "progress": False, "seed": 0}
# the heading each report section writes
HEADINGS = {"samples": "Samples", "reconstructions": "Reconstructions", "interpolation": "Latent interpolation",
            "table-columns": "Real vs generated columns", "text-samples": "Samples",
            "compositions": "Compositions", "molecules": "Generated molecules", "graph": "Learned graph",
            "denoising-trajectory": "Denoising trajectory", "text-to-image": "Captions and their images"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The data files the cases name: a corpus, a table sampled from asia, SMILES chains,
    and packs of digits and of the corpus."""
    from genlab.models.pgm import read_bif

    d = tmp_path_factory.mktemp("data")
    (d / "corpus.txt").write_text(TEXT)
    bn = read_bif("asia")
    bn.decode(bn.sample(300, generator=0)).to_csv(d / "asia.csv")
    rng = np.random.default_rng(1)
    chains = dict.fromkeys("".join(rng.choice(list("CCCCCCNO"), int(rng.integers(3, 9)))) for _ in range(300))
    (d / "mols.smi").write_text("SMILES\n" + "\n".join(chains) + "\n")
    from genlab.data.packed import pack

    pack("digits", d / "digits.gldata", progress=False)
    pack(str(d / "corpus.txt"), d / "corpus.gldata", progress=False, options={"block_size": 16})
    return d


def test_every_registered_model_has_a_run_case():
    missing = set(genlab.MODELS.names()) - {c[0] for c in CASES.values()}
    assert not missing, f"add a run case for {sorted(missing)} to CASES"
    assert set(REPORT_SECTIONS.names()) <= set(HEADINGS), "add the new section's heading to HEADINGS"


def _read_back(path, n, tags):
    """What a sample file holds, read with a tool that knows its format: its item count."""
    s = path.suffix
    if s == ".npy":
        x = np.load(path)
        if tags.sample_shape and tags.modality != "text":
            assert x.shape[1:] == tuple(tags.sample_shape), (x.shape, tags.sample_shape)
        return len(x)
    if s == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        try:
            [float(v) for v in rows[0]]
            return len(rows)  # numbers only
        except ValueError:
            return len(rows) - 1  # a header line (labelled states)
    if s in (".png", ".jpg", ".jpeg"):
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            assert min(im.size) >= 8
        return n  # a grid: one picture
    if s == ".gif":  # an animation (a diffusion model's denoising trajectory)
        from PIL import Image

        with Image.open(path) as im:
            assert im.format == "GIF" and im.n_frames >= 2 and min(im.size) >= 8
        return n
    if s in (".txt", ".smi"):
        return len(path.read_text().split("\n")) - 1
    if s in (".mid", ".midi", ".wav"):  # one file per piece beside the target: s_0.mid, s_1.mid, ...
        pieces = sorted(path.parent.glob(f"{path.stem}_*{s}"))
        magic = b"RIFF" if s == ".wav" else b"MThd"
        assert pieces and all(p.read_bytes()[:4] == magic for p in pieces), pieces
        return len(pieces)
    raise AssertionError(f"no reader for {s}: add one to _read_back")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_whole_run(case, files, tmp_path, monkeypatch, request):
    name, data, config, options = CASES[case]
    if data.endswith(".gldata"):
        monkeypatch.setenv("GENLAB_PACK_IN_MEMORY_BYTES", "0")
    source = str(files / data) if (files / data).exists() else data
    out = tmp_path / "run"

    # train: run folder, test metrics, report
    run = train_run(name, source, out=out, train=TRAIN, model_config=config, data_options=options)
    assert run.info["status"] == "finished", run.info
    assert (out / "eval.json").is_file() and (out / "report.html").is_file()
    model = run.model()
    tags = model.tags
    test = run.data_splits()["test"]
    html = (out / "report.html").read_text()
    assert "could not" not in html, html[html.index("could not") - 300:][:600]
    for section in REPORT_SECTIONS.applicable(tags, test):
        assert f"<h2>{HEADINGS[section.name]}" in html, f"{case}: the {section.name} section is missing"

    # sample to every format that applies, and read each file back
    suffixes = writers_for(model)
    assert ".npy" in suffixes
    for suffix in suffixes:
        path = tmp_path / "samples" / f"s{suffix}"
        path.parent.mkdir(exist_ok=True)
        n = 3 if tags.modality == "music" else 4
        line = write_samples(model, n, path, seed=1, progress=False)
        assert line == f"wrote {n} samples to {path}"
        assert _read_back(path, n, tags) >= (1 if suffix in (".txt", ".smi") else n), (case, suffix)

    # evaluate where an evaluator applies; elsewhere a clear refusal
    if EVALUATORS.applicable(tags, test):
        judge = str(request.getfixturevalue("shapes_judges").judges.folder) if "prompt" in tags.conditions else None
        rec = evaluate_run(run, n=48, progress=False, judge=judge)
        # a metric may be NaN where it has nothing to measure (scaffolds of ring-free chains)
        values = [r["value"] for r in rec["rows"] if isinstance(r.get("value"), (int, float))]
        assert values and np.isfinite(values).any(), rec["rows"]
        write_report(run)
        assert "evaluation" in Run(out).eval
    else:
        with pytest.raises(DataError, match="nothing to score"):
            evaluate_run(run, n=48, progress=False)

    # resume to a second epoch (an estimator has nothing to resume, and says so)
    again = train_run(name, None, out=out, train={"epochs": 2}, resume=True)
    if tags.trained_by == "estimator":
        assert again.note and "nothing to resume" in again.note
        return
    assert again.note is None and again.info["status"] == "finished"
    assert again.info["history"], again.info
    epochs = {r.get("epoch") for r in again.metrics() if r.get("split") == "train"}
    assert max(e for e in epochs if e is not None) >= 1, epochs
    back = Run(out).model()
    with torch.no_grad():
        x = back.sample(2, generator=torch.Generator().manual_seed(0))
    assert len(x) == 2
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
