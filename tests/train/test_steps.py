"""The step protocol: one Trainer, pluggable steps (gradient, adversarial, a custom one),
one Callback protocol for every family, every TrainConfig field honoured or refused,
nanoGPT's weight-decay groups, old checkpoints refused clearly."""
import json

import pytest
import torch

import genlab
from genlab.base import Config
from genlab.models import TorchGenerativeModel
from genlab.data import Dataset
from genlab.errors import TrainingDivergedError
from genlab.models.gan import GAN, SRGAN
from genlab.train import Callback, GradientStep, Step, TrainConfig, Trainer
from genlab.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from genlab.train.schedule import decay_groups, make_optimizer

TINY_GAN = {"arch": "mlp", "hidden": (16,), "latent_dim": 4}
FAST = {"epochs": 1, "batch_size": 32, "progress": False, "threads": 1}


def table(n=64):
    return Dataset(torch.randn(n, 3, generator=torch.Generator().manual_seed(0)), kind="table")


class Tiny(TorchGenerativeModel):
    """A model built at construction that needs no data shape (not registered)."""

    def __init__(self):
        super().__init__(Config())
        self.build()
        self.built = True

    def _ensure_built(self, dataset):
        pass


# ----------------------------------------------------------------------------- a custom step
class TwoPart(Tiny):
    """Two parameters trained by two optimizers in turn (a stand-in for a new family with a
    new kind of update)."""

    model_type = "two-part-test"

    def build(self):
        self.a = torch.nn.Parameter(torch.zeros(()))
        self.b = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        m = batch["x"].mean()
        return {"loss": (self.a - m) ** 2 + (self.b + m) ** 2}

    def training_step(self):
        return Alternate()


class Alternate(Step):
    """Updates ``a`` on even steps and ``b`` on odd ones; counts its updates (its own state)."""

    progress_keys = ("loss_a", "loss_b")
    lr_flags = {"a": "lr", "b": "lr"}

    def __init__(self):
        self.updates = 0

    def configure(self, trainer, model):
        cfg = trainer.config
        return {"a": make_optimizer([model.a], cfg), "b": make_optimizer([model.b], cfg.replace(lr=cfg.lr * 2))}

    def run(self, trainer, batch):
        m = batch["x"].mean()
        model = trainer.model
        name, loss = ("a", (model.a - m) ** 2) if trainer.step % 2 == 0 else ("b", (model.b + m) ** 2)
        trainer.check(loss, f"loss {name}")
        trainer.update(name, loss, what=name)
        self.updates += 1
        return {f"loss_{name}": float(loss.detach())}

    def state_dict(self):
        return {"updates": self.updates}

    def load_state_dict(self, state):
        self.updates = state["updates"]


def test_a_custom_step_trains_checkpoints_and_resumes_bit_identically(tmp_path):
    cfg = {"epochs": 6, "batch_size": 8, "lr": 0.05, "checkpoint_every": 5, "progress": False,
           "val_fraction": 0, "log_every": 1}
    ref = TwoPart().fit(table(), cfg, run_dir=tmp_path / "ref")
    ck = read_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    assert set(ck["optimizers"]) == set(ck["schedulers"]) == {"a", "b"}
    assert ck["step_state"] == {"updates": 48} and set(ck["guards"]) == {"loss a", "loss b"}
    assert ck["base_lrs"] == {"a": 0.05, "b": 0.1}

    class StopAt(Callback):
        def on_step_end(self, trainer, logs):
            trainer.should_stop = trainer.step == 13

    TwoPart().fit(table(), cfg, run_dir=tmp_path / "cut", callbacks=[StopAt()])
    assert load_checkpoint(tmp_path / "cut" / "checkpoints")["step_state"] == {"updates": 13}
    t = Trainer(cfg)
    resumed = t.fit(TwoPart(), table(), run_dir=tmp_path / "cut", resume=True)
    assert t.training_step.updates == 48
    assert torch.equal(resumed.a, ref.a) and torch.equal(resumed.b, ref.b)
    assert ref.a.item() == pytest.approx(-ref.b.item(), abs=0.2) and ref.a.item() != 0  # a -> mean, b -> -mean
    # a step given to the trainer replaces the model's own
    t = Trainer({**cfg, "epochs": 1}, step=GradientStep())
    m = t.fit(TwoPart(), table())
    assert set(t.optimizers) == {"model"} and m.a.item() != 0 and m.b.item() != 0


def test_set_lr_scales_every_optimizer_of_a_step():
    seen = []

    class Anneal(Callback):
        def on_step_end(self, trainer, logs):
            if trainer.step == 2:
                trainer.set_lr(0.01)  # the primary's new base; the other keeps its ratio (x 2)
            if trainer.step == 4:
                trainer.set_lr(0.5, name="b")
            seen.append({k: o.param_groups[0]["lr"] for k, o in trainer.optimizers.items()})

    TwoPart().fit(table(), {"epochs": 1, "batch_size": 8, "lr": 0.05, "progress": False, "val_fraction": 0},
                  callbacks=[Anneal()])
    assert seen[0] == {"a": 0.05, "b": 0.1}
    assert seen[2]["a"] == pytest.approx(0.01) and seen[2]["b"] == pytest.approx(0.02)
    assert seen[4] == pytest.approx({"a": 0.01, "b": 0.5})


def test_set_lr_of_a_gan_keeps_the_ttur_ratio(digits_small):
    seen = []

    class Half(Callback):
        def on_step_end(self, trainer, logs):
            seen.append((trainer.optimizers["generator"].param_groups[0]["lr"],
                         trainer.optimizers["discriminator"].param_groups[0]["lr"]))
            if trainer.step == 1:
                trainer.set_lr(1e-4)

    GAN(**TINY_GAN, lr_g=2e-4, lr_d=4e-4).fit(digits_small, {**FAST, "max_steps": 3}, callbacks=[Half()])
    assert seen[0] == (2e-4, 4e-4) and seen[-1] == pytest.approx((1e-4, 2e-4))


# ----------------------------------------------------------------------------- callbacks
class Record(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, trainer):
        self.calls.append(("fit_start", trainer.step))

    def on_step_end(self, trainer, logs):
        self.calls.append(("step", trainer.step, sorted(logs)))

    def on_validation_end(self, trainer, row):
        self.calls.append(("validation", trainer.step, sorted(k for k in row if k.startswith("val_"))))

    def on_epoch_end(self, trainer, row):
        self.calls.append(("epoch", trainer.epoch))

    def on_fit_end(self, trainer):
        self.calls.append(("fit_end", trainer.step, trainer.model.fitted))


@pytest.mark.parametrize("family", ["vae", "srgan"])
def test_one_callback_protocol_for_every_family(family, digits_splits):
    train, val = digits_splits["train"].subset(slice(0, 64)), digits_splits["val"].subset(slice(0, 32))
    if family == "vae":
        model = genlab.models.VAE(hidden=(16,), latent_dim=2)
        cfg = {**FAST, "epochs": 2}
    else:
        model = SRGAN(factor=2, channels=4, n_blocks=1, d_channels=(4,), val_every=2)
        cfg = {**FAST, "epochs": 2}
    rec = Record()
    model.fit(train, cfg, val=val, callbacks=[rec])
    kinds = [c[0] for c in rec.calls]
    assert kinds[0] == "fit_start" and kinds[-1] == "fit_end" and rec.calls[-1][2] is True
    assert kinds.count("step") == (4 if family == "vae" else 2)  # SRGAN: a D and a G batch per step
    assert kinds.count("epoch") == 2  # epochs are passes over the data for every family
    vals = [c for c in rec.calls if c[0] == "validation"]
    assert [c[1] for c in vals] == ([2, 4] if family == "vae" else [2])
    assert vals[0][2] == (["val_elbo", "val_kl", "val_loss", "val_recon"] if family == "vae"
                          else ["val_psnr", "val_psnr_bicubic"])
    steps = [c for c in rec.calls if c[0] == "step"]
    assert ("loss" in steps[0][2]) if family == "vae" else {"d_loss", "g_loss"} <= set(steps[0][2])


# ----------------------------------------------------------------------------- TrainConfig fields
def test_a_gan_honours_grad_clip(digits_small):
    """SGD at lr 1 with grad_clip 0.01: each network moves by exactly the clipped norm."""
    g = GAN(**TINY_GAN, lr_g=1.0, lr_d=1.0, betas=None)
    before = {}

    class Keep(Callback):
        def on_fit_start(self, trainer):
            before.update({k: v.clone() for k, v in trainer.model.state_dict().items()})

    g.fit(digits_small, {**FAST, "optimizer": "sgd", "momentum": 0.0, "grad_clip": 0.01, "max_steps": 1},
          callbacks=[Keep()])
    for part in ("generator", "discriminator"):
        moved = torch.cat([(v - before[k]).flatten() for k, v in g.state_dict().items()
                           if k.startswith(part + ".") and v.is_floating_point()])
        assert float(moved.norm()) == pytest.approx(0.01, rel=1e-3), part


def test_a_gan_honours_augment_and_is_still_reproducible(digits_small):
    def fit(**extra):
        return GAN(**TINY_GAN).fit(digits_small, {**FAST, "max_steps": 4, **extra}).state_dict()

    plain, a, b = fit(), fit(augment="flip,noise:0.1"), fit(augment="flip,noise:0.1")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], plain[k]) for k in a)


def test_a_gan_stops_early_on_its_validation_score(tmp_path, digits_splits):
    """patience counts validations (every val_every steps) without a better PSNR."""
    m = SRGAN(factor=2, channels=4, n_blocks=1, d_channels=(4,), val_every=1, lr_g=0.5)  # too high: gets worse
    t = Trainer({**FAST, "batch_size": 16, "epochs": 20, "patience": 2, "optimizer": "sgd", "momentum": 0.0})
    t.fit(m, digits_splits["train"].subset(slice(0, 128)), val=digits_splits["val"].subset(slice(0, 32)),
          run_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    stop = [r for r in rows if r.get("event") == "early_stop"]
    assert stop and stop[0]["step"] < t.total_steps and "best_val_psnr" in stop[0]
    assert t.stopped_early and t.step == stop[0]["step"]


def test_the_tensorboard_request_is_honoured_or_says_why(tmp_path, digits_small):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.warns(RuntimeWarning, match="tensorboard package is not installed"):
            GAN(**TINY_GAN).fit(digits_small, {**FAST, "max_steps": 2, "tensorboard": True}, run_dir=tmp_path)
    else:
        GAN(**TINY_GAN).fit(digits_small, {**FAST, "max_steps": 2, "tensorboard": True}, run_dir=tmp_path)
        assert list((tmp_path / "tensorboard").iterdir())


def test_refusals_are_minimal_and_one_line(digits_small):
    from genlab.models.gan.train import AdversarialStep

    assert set(AdversarialStep.unsupported) == {"eval_every", "monitor"}
    assert GradientStep.unsupported == {}
    for field, value in (("eval_every", 3), ("monitor", "val_fid")):
        with pytest.raises(ValueError, match=f"^{field}={value!r} is not supported for GAN training: [^\n]+$"):
            GAN(**TINY_GAN).fit(digits_small, {**FAST, field: value})
    every = set(TrainConfig.field_names())
    assert set(AdversarialStep.unsupported) <= every


def test_a_gan_divergence_names_both_rates(tmp_path, digits_small):
    g = GAN(**TINY_GAN, lr_g=1e6, lr_d=1e6)
    with pytest.raises(TrainingDivergedError) as e:
        g.fit(digits_small, {**FAST, "epochs": 20, "batch_size": 16, "checkpoint_every": 1}, run_dir=tmp_path)
    msg = str(e.value)
    assert "lower learning rates (now lr_g=1e+06, lr_d=1e+06" in msg and "\n" not in msg
    assert "spectral_norm=True" in msg


# ----------------------------------------------------------------------------- weight decay
class Mixed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.lin = torch.nn.Linear(4, 4)
        self.conv = torch.nn.Conv1d(4, 4, 3)
        self.norm = torch.nn.LayerNorm(4)
        self.bn = torch.nn.BatchNorm1d(4)
        self.sn = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Linear(4, 4))
        self.rnn = torch.nn.GRU(4, 4)
        self.pos = torch.nn.Parameter(torch.zeros(5, 4))  # a free (positional) parameter


def test_weight_decay_follows_nanogpts_groups():
    m = Mixed()
    names = {id(p): n for n, p in m.named_parameters()}
    decayed, rest = decay_groups(m)
    assert sorted(names[id(p)] for p in decayed) == sorted(
        ["lin.weight", "conv.weight", "sn.parametrizations.weight.original", "rnn.weight_ih_l0", "rnn.weight_hh_l0"])
    assert {names[id(p)] for p in rest} == {"emb.weight", "lin.bias", "conv.bias", "norm.weight", "norm.bias",
                                             "bn.weight", "bn.bias", "sn.bias", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                                             "pos"}
    opt = make_optimizer(m, TrainConfig(optimizer="adamw", weight_decay=0.1))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert [len(g["params"]) for g in opt.param_groups] == [len(decayed), len(rest)]
    everything = make_optimizer(m, TrainConfig(optimizer="adamw", weight_decay=0.1, decay_all=True))
    assert len(everything.param_groups) == 1 and everything.param_groups[0]["weight_decay"] == 0.1
    assert len(make_optimizer(m, TrainConfig(weight_decay=0.0)).param_groups) == 1


def test_weight_decay_leaves_biases_alone_in_training():
    """With SGD, no gradient on the bias ... only decay would move it: it stays put."""
    class Frozen(Tiny):
        model_type = "decay-test"

        def build(self):
            self.lin = torch.nn.Linear(3, 1)
            torch.nn.init.ones_(self.lin.bias)

        def forward(self, batch):
            return {"loss": (self.lin.weight * 0).sum() + 0 * self.lin.bias.sum()}

    for decay_all, bias_after in ((False, 1.0), (True, 1.0 - 0.1 * 0.5 * 1.0)):
        m = Frozen().fit(table(8), {"optimizer": "sgd", "momentum": 0.0, "lr": 0.1, "weight_decay": 0.5,
                                    "decay_all": decay_all, "max_steps": 1, "batch_size": 8,
                                    "progress": False, "val_fraction": 0})
        assert m.lin.bias.item() == pytest.approx(bias_after)


# ----------------------------------------------------------------------------- old checkpoints
def test_a_checkpoint_of_the_old_loops_is_refused_clearly(tmp_path, digits_small):
    GAN(**TINY_GAN).fit(digits_small, {**FAST, "max_steps": 2}, run_dir=tmp_path)
    state = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    old = {k: v for k, v in state.items() if k not in ("format", "optimizers", "schedulers")}
    old.update({"opt_g": {}, "opt_d": {}})  # the GAN loop's layout before the steps
    save_checkpoint(tmp_path / "checkpoints", old)
    with pytest.raises(CheckpointError, match=r"older genlab training loop .*cannot be resumed: start a new run"):
        GAN(**TINY_GAN).fit(digits_small, {**FAST, "max_steps": 4}, run_dir=tmp_path, resume=True)
