"""Devices and precision (issue 16): device resolution and its errors, mixed precision on
the CPU (bf16 autocast; float16 with a gradient scaler, saved in checkpoints), what may
change on resume, and device hygiene checked on the ``meta`` device: a model moved there
runs its sampling and scoring with no tensor left on the CPU (mixing the two raises)."""
import pytest
import torch

import genlab
from genlab import devices
from genlab.devices import DeviceError, resolve_device
from genlab.train import TrainConfig
from genlab.train.checkpoint import read_checkpoint
from genlab.workflow import train_run

TINY = {"hidden": (16,), "latent_dim": 2}
TRAIN = {"epochs": 1, "batch_size": 64, "progress": False, "seed": 0}


# ----------------------------------------------------------------------------- devices
def test_resolve_device_on_this_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    with pytest.raises(DeviceError, match="no CUDA GPU is visible here .available: cpu.; use --device cpu or auto"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="Metal backend is not available"):
        resolve_device("mps")
    for bad in ("gpu", "cuda:x", "cpu:0", 3, None.__class__):
        with pytest.raises(DeviceError, match="device must be one of auto, cpu, cuda, mps"):
            resolve_device(bad)


def test_resolve_device_with_a_fake_gpu(monkeypatch):
    """With CUDA reported available (two GPUs), auto picks it, cuda:N is checked against the
    count, and under torchrun plain "cuda" is the process's LOCAL_RANK GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match="has 2 CUDA GPU.s., cuda:0..cuda:1"):
        resolve_device("cuda:2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert devices.available_devices()[0] == "cuda"


def test_train_config_checks_device_and_precision():
    assert TrainConfig(precision=32).precision == "32"
    assert TrainConfig().device == "auto" and TrainConfig().precision == "32" and not TrainConfig().compile
    for bad, msg in [({"device": "gpu"}, "device must be one of"), ({"precision": "16"}, "precision must be one of"),
                     ({"precision": "bf16"}, "precision must be one of"), ({"compile": "yes"}, "compile must be")]:
        with pytest.raises(ValueError, match=msg):
            TrainConfig(**bad)


def test_cli_refuses_a_missing_gpu_in_one_line(tmp_path, capsys, monkeypatch):
    from genlab.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["train", "vae", "--data", "digits", "--limit", "64", "--out", str(tmp_path / "r"),
               "--device", "cuda", "--epochs", "1", "--hidden=(8,)"])
    err = capsys.readouterr().err
    assert rc != 0 and "no CUDA GPU is visible here" in err and "Traceback" not in err, err


# ----------------------------------------------------------------------------- precision
def _autocast_seen(model, data, precision):
    """Train one epoch at ``precision`` and return the dtypes the first Linear produced."""
    seen = set()

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Linear):
            seen.add(output.dtype)

    h = torch.nn.modules.module.register_module_forward_hook(hook)  # the fit rebuilds the layers
    try:
        model.fit(data, {**TRAIN, "precision": precision})
    finally:
        h.remove()
    return seen


@pytest.mark.parametrize("precision, dtype", [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)])
def test_mixed_precision_trains_a_vae_on_the_cpu(digits_small, precision, dtype):
    vae = genlab.models.VAE(**TINY, likelihood="gaussian")
    seen = _autocast_seen(vae, digits_small, precision)
    assert dtype in seen  # the forward ran under autocast
    assert all(p.dtype == torch.float32 for p in vae.parameters())  # the weights stay float32
    lp = vae.log_prob(digits_small.x[:16], k=4, generator=torch.Generator().manual_seed(0))
    assert lp.dtype == torch.float64 and torch.isfinite(lp).all()
    ref = genlab.models.VAE(**TINY, likelihood="gaussian").fit(digits_small, TRAIN)
    ref_lp = ref.log_prob(digits_small.x[:16], k=4, generator=torch.Generator().manual_seed(0))
    assert abs(float(lp.mean() - ref_lp.mean())) < 0.1 * abs(float(ref_lp.mean()))  # close to float32


@pytest.mark.parametrize("name, config, data", [
    ("gan", {"arch": "mlp", **TINY}, "digits_small"),
    ("lstm", {"hidden": 16, "layers": 1}, "text_small"),
])
def test_bf16_autocast_trains_a_gan_and_an_lstm(name, config, data, request):
    ds = request.getfixturevalue(data)
    model = genlab.MODELS.get(name)(**config)
    model.fit(ds, {**TRAIN, "precision": "bf16-mixed", "max_steps": 4})
    x = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert len(x) == 3 and (x.is_floating_point() is False or torch.isfinite(x).all())


def test_float16_scaler_is_checkpointed_and_precision_is_fixed_on_resume(digits_small, tmp_path):
    run = train_run("vae", "digits", out=tmp_path / "r", model_config=TINY, data_options={"limit": 128},
                    train={**TRAIN, "precision": "16-mixed"}, report=False)
    state = read_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert state["scaler"]["scale"] > 0  # the gradient scaler's state travels with the run
    with pytest.raises(ValueError, match="cannot resume .* with precision='32'.*precision cannot change"):
        train_run("vae", None, out=tmp_path / "r", train={"epochs": 2, "precision": "32"}, resume=True)
    again = train_run("vae", None, out=tmp_path / "r", train={"epochs": 2, "device": "cpu"}, resume=True)
    assert again.info["status"] == "finished" and run.info["n_train"] == again.info["n_train"]


def test_resume_on_another_device_is_allowed_and_recorded(tmp_path):
    train_run("vae", "digits", out=tmp_path / "r", model_config=TINY, data_options={"limit": 128},
              train=TRAIN, report=False)
    again = train_run("vae", None, out=tmp_path / "r", train={"epochs": 2, "device": "cpu"}, resume=True)
    assert again.info["history"][-1]["changed"]["device"] == ["auto", "cpu"]


@pytest.mark.slow
def test_compile_trains_a_vae(digits_small):
    vae = genlab.models.VAE(**TINY).fit(digits_small, {**TRAIN, "compile": True, "max_steps": 3})
    assert "forward" not in vae.__dict__  # the compiled forward does not outlive the fit
    assert torch.isfinite(vae.sample(4, generator=torch.Generator().manual_seed(0))).all()


# ----------------------------------------------------------------------------- hygiene
@pytest.fixture
def meta_results(monkeypatch):
    """The copy of the device API's results to the caller's CPU, emulated for meta tensors
    (which hold no values to copy): a CPU tensor of the same shape and dtype. A result that
    is copied back where it should stay on the device (``encode`` inside the training
    forward pass) then meets the model's meta weights and raises."""
    import genlab.models.torch_model as tm

    def to_caller(value):
        if torch.is_tensor(value):
            return torch.zeros(value.shape, dtype=value.dtype) if value.device.type == "meta" else value.cpu()
        if isinstance(value, dict):
            return {k: to_caller(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(to_caller(v) for v in value)
        return value

    monkeypatch.setattr(tm, "_to_caller", to_caller)


@pytest.mark.parametrize("name, config, calls", [
    ("vae", {**TINY}, ("forward", "sample", "reconstruct", "sample_latent")),
    ("vae", {**TINY, "likelihood": "gaussian"}, ("forward", "sample", "log_prob")),
    ("autoencoder", {**TINY, "denoise_std": 0.1}, ("forward", "sample", "reconstruct")),
    ("gan", {"arch": "mlp", **TINY}, ("forward", "sample")),
    ("gan", {"arch": "conv", "g_channels": (8, 4), "d_channels": (4, 8), "latent_dim": 4, "num_classes": -1,
             "loss": "wgan-gp"}, ("forward",)),
    ("transformer", {"d_model": 16, "layers": 1, "heads": 2}, ("forward",)),
    ("diffusion", {"channels": 8, "heads": 2, "timesteps": 20, "sample_steps": 3, "num_classes": -1,
                   "loss_weighting": "min-snr", "prediction": "v"}, ("forward", "sample")),
    ("diffusion", {"hidden": 8, "depth": 1, "timesteps": 20, "sample_steps": 3, "arch": "mlp"}, ("forward", "sample")),
    ("diffusion", {"channels": 8, "heads": 2, "attention_res": 4, "timesteps": 20, "sample_steps": 3, "text_dim": 16,
                   "text_layers": 1, "text_conditioning": "both"}, ("forward", "sample", "sample_prompt")),
    ("latent-diffusion", {"encoder_channels": (4,), "channels": 8, "heads": 2, "timesteps": 20, "sample_steps": 3,
                          "stage1_steps": 1}, ("forward", "sample", "reconstruct", "sample_latent")),
    ("lstm", {"hidden": 16, "layers": 1}, ("forward",)),
])
def test_no_cpu_tensor_inside_on_another_device(name, config, calls, digits_small, text_small, shapes_small,
                                                meta_results):
    """On the meta device any CPU tensor met inside a computation raises ("Tensor on device
    cpu is not on the expected device meta"): the training forward pass, sampling and
    scoring run with every tensor, seeded noise included, on the model's device, and the
    device API called inside them (``encode`` in the forward pass) keeps its results there. (Meta
    tensors hold no values, so calls that check their inputs' values — a conditional VAE's
    labels, the sequence VAE's packed lengths — are left to the GPU check script,
    scripts/gpu_check.py.)"""
    ds = text_small if name in ("transformer", "lstm") else shapes_small if "text_dim" in config else digits_small
    model = genlab.MODELS.get(name)(**config).fit(ds, {**TRAIN, "max_steps": 2})
    x = ds.x[:4]
    batch = {"x": x.to("meta"), **({"y": ds.y[:4].to("meta")} if ds.y is not None else {}),
             **({"text": ds.text[:4].to("meta")} if ds.text is not None else {})}
    model.to("meta").train()
    g = torch.Generator().manual_seed(0)
    args = {"forward": lambda: model(batch)["loss"],
            "sample": lambda: model.eval().sample(4, generator=g),
            "sample_prompt": lambda: model.eval().sample(4, prompt="a red circle at the top left", guidance=3,
                                                         generator=g),
            "sample_latent": lambda: model.sample_latent(4, generator=g),
            "log_prob": lambda: model.log_prob(x, k=2, generator=g),
            "reconstruct": lambda: model.reconstruct(x)}
    for call in calls:
        out = args[call]()  # computed on the meta device (a CPU tensor inside would have raised) ...
        # ... and handed to the caller on the CPU, except the training forward pass's loss
        assert out.device.type == ("meta" if call == "forward" else "cpu"), (name, call)


FAMILIES = {  # every torch family, tiny
    "autoencoder": ({**TINY}, "digits_small"),
    "vae": ({**TINY}, "digits_small"),
    "gan": ({"arch": "mlp", **TINY}, "digits_small"),
    "srgan": ({"factor": 2, "channels": 8, "n_blocks": 1, "d_channels": (8,)}, "digits_small"),
    "rbm": ({"hidden": 16, "sample_steps": 5, "ais_betas": 10, "ais_chains": 5}, "digits_small"),
    "rnn": ({"hidden": 16, "layers": 1}, "text_small"),
    "lstm": ({"hidden": 16, "layers": 1}, "text_small"),
    "gru": ({"hidden": 16, "layers": 1}, "text_small"),
    "transformer": ({"d_model": 16, "layers": 1, "heads": 2}, "text_small"),
    "seqvae": ({"embed_dim": 8, "enc_hidden": 16, "dec_hidden": 16, "dec_layers": 1, "latent_dim": 2}, "text_small"),
    "diffusion": ({"channels": 8, "heads": 2, "timesteps": 20, "sample_steps": 3, "nll_timesteps": 3,
                   "num_classes": -1}, "digits_small"),
    "latent-diffusion": ({"encoder_channels": (4,), "channels": 8, "heads": 2, "timesteps": 20, "sample_steps": 3,
                          "num_classes": -1, "stage1_steps": 1}, "digits_small"),
}


def test_every_torch_family_has_a_precision_case():
    from genlab.models.torch_model import TorchGenerativeModel

    torch_families = {n for n in genlab.MODELS.names() if issubclass(genlab.MODELS.get(n), TorchGenerativeModel)}
    assert torch_families <= set(FAMILIES), sorted(torch_families - set(FAMILIES))


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_torch_family_trains_and_samples_in_mixed_precision(name, precision, request):
    config, data = FAMILIES[name]
    model = genlab.MODELS.get(name)(**config)
    model.fit(request.getfixturevalue(data), {**TRAIN, "precision": precision, "max_steps": 3})
    x = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert len(x) == 2 and (not x.is_floating_point() or bool(torch.isfinite(x).all()))


def test_the_gpu_check_script_runs_cpu_against_cpu(tmp_path):
    """scripts/gpu_check.py, the prepared accelerator check, kept working: its smoke run with
    the CPU standing in for the accelerator passes every check."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"
    p = subprocess.run([sys.executable, str(script), "--device", "cpu", "--smoke", "--only", "vae,lstm",
                        "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                       "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "10 of 10 checks hold on cpu" in p.stdout  # five checks each for the VAE and the LSTM
    assert "lstm loss curve, cpu vs cpu" in p.stdout
    assert (tmp_path / "gpu_check.json").is_file()


def test_sample_and_evaluate_take_a_device(tmp_path, capsys, monkeypatch):
    """`genlab sample` / `genlab evaluate --device`: the CPU by default (the same samples on
    every machine); a device that is not there is one line."""
    from genlab.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = train_run("vae", "digits", out=tmp_path / "r", model_config=TINY, data_options={"limit": 128},
                    train=TRAIN, report=False)
    assert main(["sample", str(run.path), "-n", "8", "-o", str(tmp_path / "a.npy"), "--device", "cpu"]) == 0
    assert main(["sample", str(run.path), "-n", "8", "-o", str(tmp_path / "b.npy")]) == 0
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    capsys.readouterr()
    for cmd in (["sample", str(run.path), "-n", "8", "-o", str(tmp_path / "c.npy")],
                ["evaluate", str(run.path), "-n", "50", "--metrics", "fid"]):
        assert main([*cmd, "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "no CUDA GPU is visible here" in err and "Traceback" not in err, err
    assert not (tmp_path / "c.npy").exists()
