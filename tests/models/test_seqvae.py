"""Math and behaviour of the sequence VAE (seqvae / smiles-vae) on names."""
import importlib.util
import json
import math

import pytest
import torch

import genlab
from genlab.train.checkpoint import read_checkpoint
from genlab.errors import DataError, NotFittedError
from genlab.models.seqvae import SeqVAE, SeqVAEConfig
from genlab.models.sequence.sampling import mask_never_next
from genlab.models.seqvae.model import row_lengths, slerp
from genlab.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from genlab.train import Trainer

pytestmark = pytest.mark.skipif(importlib.util.find_spec("names") is None, reason="pip install names")

TINY = {"embed_dim": 16, "enc_hidden": 64, "dec_hidden": 64, "dec_layers": 1, "latent_dim": 8,
        "kl_max": 1.0, "kl_warmup_steps": 50, "free_bits": 1.0}
TRAIN = {"epochs": 30, "batch_size": 32, "lr": 1e-2, "progress": False, "seed": 0, "log_every": 5}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def names():
    from genlab.data.datasets import load_splits

    return load_splits("names", limit=300)


def untrained(train):
    """The model as it is before training (same config, weights from the seeded build)."""
    tok = train.meta["tokenizer"]
    torch.manual_seed(TRAIN["seed"])
    return SeqVAE(data_shape=tuple(train.shape), tokenizer=tok["tokenizer"], vocab=tuple(tok["vocab"]),
                  start=train.meta["start"], **TINY)


@pytest.fixture(scope="module")
def trained(names):
    torch.set_num_threads(1)
    trainer = Trainer(TRAIN)
    model = trainer.fit(SeqVAE(**TINY), names["train"], val=names["val"])
    return model, trainer.history


# ----------------------------------------------------------------------------- config
def test_config_errors_are_actionable():
    with pytest.raises(ValueError, match="latent_dim"):
        SeqVAEConfig(latent_dim=0)
    with pytest.raises(ValueError, match="word_dropout"):
        SeqVAEConfig(word_dropout=1.0)
    with pytest.raises(ValueError, match="kl_warmup_steps"):
        SeqVAEConfig(kl_warmup_steps=-1)
    with pytest.raises(ValueError, match="tie_weights needs embed_dim == dec_hidden"):
        SeqVAEConfig(tie_weights=True, embed_dim=32, dec_hidden=64)
    with pytest.raises(ValueError, match="tokenizer"):
        SeqVAEConfig(tokenizer="morse")
    assert genlab.MODELS.get("smiles-vae") is SeqVAE


def test_kl_weight_schedule_is_linear_then_flat():
    c = SeqVAEConfig(kl_max=0.5, kl_warmup_steps=100)
    assert [c.kl_weight(s) for s in (0, 25, 50, 100, 1000)] == [0.0, 0.125, 0.25, 0.5, 0.5]
    assert SeqVAEConfig(kl_max=0.05, kl_warmup_steps=0).kl_weight(0) == 0.05


def test_training_follows_the_schedule_and_counts_steps(trained):
    model, history = trained
    rows = [r for r in history if r["split"] == "train"]
    assert int(model.kl_step) == rows[-1]["step"]  # one count per optimizer step
    for r in rows:  # the weight used at step s (1-based) is that of s - 1 steps taken
        assert math.isclose(r["kl_weight"], model.config.kl_weight(r["step"] - 1), rel_tol=1e-6)
    assert rows[0]["kl_weight"] < 1.0 and rows[-1]["kl_weight"] == 1.0


# ----------------------------------------------------------------------------- learning
def test_elbo_improves_with_training(trained, names):
    model, history = trained
    val, start = names["val"], untrained(names["train"])
    before, after = Trainer({}).evaluate(start, val), Trainer({}).evaluate(model, val)
    assert after["loss"] == pytest.approx(-after["elbo"])  # evaluation reports the plain -ELBO
    assert after["loss"] < before["loss"] - 1.5  # nats per held-out name
    fit_before = Trainer({}).evaluate(start, names["train"])["loss"]
    assert Trainer({}).evaluate(model, names["train"])["loss"] < fit_before - 5
    train_rows = [r for r in history if r["split"] == "train"]
    assert train_rows[-1]["recon"] < 0.75 * train_rows[0]["recon"]
    tokens = int((val.x[:, 1:] != PAD_ID).sum())
    assert after["loss"] * len(val) / tokens < math.log(len(model.config.vocab))  # beats uniform
    assert after["kl"] > 2  # free bits keep the code in use


def test_reconstruction_of_training_names_improves(trained, names):
    model, _ = trained
    x = names["train"].x[:200]
    floor = untrained(names["train"])
    with pytest.raises(NotFittedError):  # random weights are refused by default...
        floor.reconstruction_accuracy(x)
    floor.fitted = True  # ...but here they are the metric's floor, on purpose
    assert floor.reconstruction_accuracy(x) == 0.0
    assert model.reconstruction_accuracy(x) >= 0.15


def test_iwae_bound_tightens_and_is_a_log_probability(trained, names):
    model, _ = trained
    x = names["val"].x[:64]
    elbo = model.log_prob(x, k=1, generator=gen())
    iwae = model.log_prob(x, k=64, generator=gen())
    assert elbo.dtype == torch.float64 and elbo.shape == (64,)
    assert (iwae <= 0).all()  # a probability of discrete data is at most 1
    assert iwae.mean() > elbo.mean()
    # the per-token bound of the run metrics (evaluate_model) is reproducible
    assert model.nll_per_token(x) == model.nll_per_token(x)


def test_packed_decoder_equals_one_row_at_a_time(trained, names):
    model, _ = trained
    x = names["val"].x[:6]
    lengths = row_lengths(x)
    z = torch.randn(6, model.config.latent_dim, generator=gen(1))
    with torch.no_grad():
        batch = model._log_px(x, lengths, z)
        for i in range(6):  # each row alone, cut to its length: no padding at all
            L = int(lengths[i])
            h = model._initial_state(z[i:i + 1])
            out, _ = model._decoder_run(x[i:i + 1, :L - 1], z[i:i + 1], h)
            lp = mask_never_next(model.head(out)).log_softmax(-1)[0].gather(1, x[i, 1:L, None]).sum()
            assert torch.allclose(batch[i], lp, atol=1e-4)
    # extra <pad> columns change nothing
    wide = torch.cat([x, torch.full((6, 5), PAD_ID)], 1)
    assert torch.equal(model.log_prob(x, k=4, generator=gen()), model.log_prob(wide, k=4, generator=gen()))


# ----------------------------------------------------------------------------- generation
def test_sampling_is_reproducible_and_rows_end_at_eos(trained, names):
    model, _ = trained
    a = model.sample(32, generator=gen(3))
    assert torch.equal(a, model.sample(32, generator=gen(3)))
    assert not torch.equal(a, model.sample(32, generator=gen(4)))
    assert a.shape == (32, names["train"].shape[0]) and (a[:, 0] == BOS_ID).all()
    for row in a.tolist():
        if EOS_ID in row:
            end = row.index(EOS_ID)
            assert all(t == PAD_ID for t in row[end + 1:]) and PAD_ID not in row[:end]
    assert sum(EOS_ID in r for r in a.tolist()) >= 28  # names end well before the row does
    texts = model.samples_to_text(a)
    assert all(isinstance(t, str) and "<" not in t for t in texts) and len(set(texts)) > 20
    z = model.sample_latent(4, generator=gen(5))  # greedy decoding ignores the generator
    assert torch.equal(model.decode(z, generator=gen(0)), model.decode(z, generator=gen(9)))


def test_interpolation_endpoints_decode_to_the_inputs(trained, names):
    model, _ = trained
    items = names["train"].meta["items"][:120]
    rec = model.samples_to_text(model.decode(model.encode(items)[0]))
    good = [s for s, r in zip(items, rec) if s == r]
    assert len(good) >= 2, "the model reconstructs too few names to test interpolation"
    a, b = good[0], good[-1]
    for method in ("slerp", "lerp"):
        path = model.samples_to_text(model.interpolate(a, b, 6, method=method))
        assert len(path) == 6 and path[0] == a and path[-1] == b
    ids = model.interpolate(model.to_ids(a)[0], b, 3)  # rows and strings alike
    assert model.samples_to_text(ids)[0] == a


def test_slerp_keeps_the_norm_and_falls_back_to_lerp():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    assert torch.allclose(path.norm(dim=1), torch.full((5,), 3.0))
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    same = slerp(z0, 2 * z0, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(same[1], 1.5 * z0)


# ----------------------------------------------------------------------------- errors, IO, resume
def test_bad_inputs_give_clear_errors(trained, digits_small):
    with pytest.raises(DataError, match="token sequences"):
        SeqVAE(**TINY).fit(digits_small, {"epochs": 1, "progress": False})
    with pytest.raises(NotFittedError):
        SeqVAE(**TINY).encode("anna")
    model, _ = trained
    with pytest.raises(ValueError, match="token ids"):
        model.log_prob(torch.rand(3, 13))
    with pytest.raises(ValueError, match="not in the tokenizer"):
        model.encode("Anna!")
    with pytest.raises(ValueError, match="steps"):
        model.interpolate("anna", "bob", 1)
    with pytest.raises(ValueError, match="z must have shape"):
        model.decode(torch.zeros(2, 3))


def test_save_load_keeps_tokenizer_schedule_and_outputs(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "m")
    loaded = genlab.load(tmp_path / "m")
    assert type(loaded) is SeqVAE and loaded.config == model.config
    assert int(loaded.kl_step) == int(model.kl_step)
    assert torch.equal(loaded.sample(8, generator=gen(2)), model.sample(8, generator=gen(2)))
    assert torch.equal(loaded.log_prob("anna", k=8, generator=gen()), model.log_prob("anna", k=8, generator=gen()))
    head = json.loads((tmp_path / "m" / "config.json").read_text())
    assert head["model_type"] == "seqvae" and head["log_prob_kind"] == "lower_bound"


class _StopAt:
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, logs):
        if trainer.step == self.step:
            trainer.should_stop = True


def test_resumed_run_continues_the_schedule_bit_identically(names, tmp_path):
    cfg = {**TINY, "dropout": 0.1, "word_dropout": 0.25, "free_bits": 0.0}
    train = {**TRAIN, "epochs": 3, "checkpoint_every": 7, "log_every": 1}
    data = names["train"].subset(slice(0, 160))  # 5 steps per epoch: checkpoints at 5, 7, 10, 14, 15
    # the run stopped by the callback at step 9 checkpoints there (mid-epoch) and resumes from it
    ref = SeqVAE(**cfg).fit(data, train, val=names["val"], run_dir=tmp_path / "ref")
    SeqVAE(**cfg).fit(data, train, val=names["val"], run_dir=tmp_path / "cut", callbacks=[_StopAt(9)])
    ckpt = read_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert ckpt["step"] == 9 and int(ckpt["model"]["kl_step"]) == 9
    resumed = SeqVAE(**cfg).fit(data, train, val=names["val"], run_dir=tmp_path / "cut", resume=True)
    a, b = ref.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(resumed.kl_step) == 15
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k != "time"}  # noqa: E731
                       for l in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(tmp_path / "ref") == strip(tmp_path / "cut")


def test_cli_train_sample_interpolate(tmp_path, capsys):
    from genlab.cli import main

    run = tmp_path / "run"
    assert main(["train", "seqvae", "--data", "names", "--limit", "64", "--epochs", "1", "--embed_dim=8",
                 "--enc_hidden=16", "--dec_hidden=16", "--dec_layers=1", "--latent_dim=4", "--out", str(run)]) == 0
    metrics = json.loads((run / "eval.json").read_text())["metrics"]
    assert metrics["nll_per_token"] > 0 and "test_elbo" in metrics
    assert "<h2>Samples</h2>" in (run / "report.html").read_text()
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3", "--temperature=0.5"]) == 0
    assert capsys.readouterr().out.count("-" * 40) == 3
    assert main(["interpolate", str(run), "anna", "bob", "--steps", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("0.000") and lines[-1].startswith("1.000")
    assert main(["interpolate", str(run), "Anna", "bob"]) == 2
    assert "not in the tokenizer" in capsys.readouterr().err


def test_works_unchanged_on_smiles_items():
    pytest.importorskip("rdkit")
    molecules = pytest.importorskip("genlab.data.molecules")
    smi = ["CCO", "c1ccccc1", "CC(=O)O", "CCN(CC)CC", "c1ccncc1", "CC(C)O", "OCC(O)CO", "CC(=O)Nc1ccc(O)cc1"] * 4
    sp = molecules.molecule_splits({"train": smi, "val": smi[:4], "test": smi[:4]}, name="toy")
    model = SeqVAE(embed_dim=8, enc_hidden=16, dec_hidden=32, dec_layers=1, latent_dim=4).fit(
        sp["train"], {"epochs": 5, "batch_size": 16, "progress": False})
    assert model.config.tokenizer == sp["train"].meta["tokenizer"]["tokenizer"]
    texts = model.samples_to_text(model.sample(4, generator=gen()))
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)
    assert torch.isfinite(model.log_prob(sp["test"], k=2, generator=gen())).all()
    assert model.interpolate("CCO", "c1ccccc1", 3).shape[0] == 3


# ----------------------------------------------------------------------------- warm start
@pytest.fixture(scope="module")
def small_lm(names, tmp_path_factory):
    torch.set_num_threads(1)
    lm = genlab.MODELS.get("lstm")(hidden=32, layers=1).fit(
        names["train"], {"epochs": 3, "batch_size": 32, "progress": False, "seed": 0})
    path = tmp_path_factory.mktemp("lm") / "lm"
    lm.save(path)
    return lm, path


WARM = {"dec_cell": "lstm", "embed_dim": 32, "dec_hidden": 32, "dec_layers": 1, "enc_hidden": 16,
        "latent_dim": 4}


def test_a_warm_started_decoder_begins_as_the_language_model(names, small_lm):
    """With the LM copied in and the z inputs at zero, log p(x | z) is the LM's for any z."""
    lm, path = small_lm
    x = names["val"].x[:16]
    vae = untrained_with(names["train"], **WARM)
    vae.init_decoder(lm)
    vae.eval()
    z = torch.randn(len(x), 4, generator=gen(1)) * 3
    got = vae._log_px(x, row_lengths(x), z).double()
    assert torch.allclose(got, lm.log_prob(x), atol=1e-4)
    # through fit(): a fresh fit copies decoder_from; the first step then starts from the LM
    trainer = Trainer({**TRAIN, "epochs": 1, "max_steps": 1, "lr": 1e-9})
    fitted = trainer.fit(SeqVAE(**WARM, decoder_from=str(path)), names["train"])
    fitted.eval()
    assert torch.allclose(fitted._log_px(x, row_lengths(x), z).double(), lm.log_prob(x), atol=1e-3)
    rows = fitted.sample(4, generator=gen(2))
    assert rows.shape[0] == 4 and len(fitted.samples_to_text(rows)) == 4


def test_a_mismatched_language_model_is_refused_with_what_to_set(names, small_lm):
    lm, _ = small_lm
    vae = untrained_with(names["train"], **{**WARM, "dec_hidden": 48})
    with pytest.raises(ValueError, match="dec_hidden=32"):
        vae.init_decoder(lm)
    vae = untrained_with(names["train"], **{**WARM, "dec_cell": "gru"})
    with pytest.raises(ValueError, match="dec_cell=lstm"):
        vae.init_decoder(lm)
    with pytest.raises(ValueError, match="recurrent language model"):
        vae.init_decoder(SeqVAE(**WARM))
    with pytest.raises(ValueError, match="dec_cell"):
        SeqVAEConfig(dec_cell="rnn")


def test_an_lstm_decoder_saves_and_loads(names, tmp_path):
    torch.set_num_threads(1)
    vae = Trainer({**TRAIN, "epochs": 1}).fit(SeqVAE(**WARM), names["train"])
    vae.save(tmp_path / "m")
    back = genlab.load(tmp_path / "m")
    x = names["val"].x[:8]
    assert torch.equal(vae.sample(3, generator=gen(0)), back.sample(3, generator=gen(0)))
    assert torch.allclose(vae.log_prob(x, k=2, generator=gen(0)), back.log_prob(x, k=2, generator=gen(0)))


def untrained_with(train, **cfg):
    tok = train.meta["tokenizer"]
    torch.manual_seed(0)
    return SeqVAE(data_shape=tuple(train.shape), tokenizer=tok["tokenizer"], vocab=tuple(tok["vocab"]),
                  start=train.meta["start"], **cfg)
