"""VAE on binarised Fashion-MNIST: genlab against pythae, same architecture, data and budget.

Both models: MLP encoder 784-512-256 -> (mu, log-variance) of a 32-d latent, MLP decoder
32-256-512-784 with a Bernoulli likelihood; Adam, lr 1e-3 (constant; genlab also with its
cosine schedule), batch 128, the same number of epochs, trained one after the other in this process on the same 55,000 training images
(binarised at 0.5). Test NLL is the IWAE estimate with K importance samples computed by ONE
estimator (below) on both models' networks, on the first N test images; pythae's own
``get_nll`` is run on a smaller subset as a cross-check of that estimator.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/vae_fashion_mnist.py --epochs 10 --k 1000 --n-test 2000
    python benchmarks/vae_fashion_mnist.py --smoke     # 1 epoch on 256 images, K = 5 on 20

pythae is optional (``bash scripts/setup.sh bench``): without it genlab runs alone.
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import math
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

import genlab

LATENT, H1, H2 = 32, 512, 256


@torch.no_grad()
def iwae_nll(encode, decode_logits, x: torch.Tensor, k: int, seed: int = 0, chunk: int = 20) -> float:
    """Mean of -log (1/k) sum p(x, z_i)/q(z_i|x) over the rows of x (B, 784), nats."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, len(x), chunk):
        xb = x[s:s + chunk]
        mu, logvar = encode(xb)
        std = (0.5 * logvar).exp()
        eps = torch.randn(k, *mu.shape, generator=g)
        z = mu + std * eps
        log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
        logits = decode_logits(z.reshape(-1, LATENT)).reshape(k, len(xb), -1)
        log_px = -F.binary_cross_entropy_with_logits(logits, xb.expand(k, -1, -1), reduction="none").sum(-1)
        out.append(torch.logsumexp((log_px + log_pz - log_q).double(), 0) - math.log(k))
    return float(-torch.cat(out).mean())


def run_genlab(train, epochs, seed, schedule="constant"):
    m = genlab.models.VAE(hidden=(H1, H2), latent_dim=LATENT, likelihood="bernoulli")
    t = time.time()
    m.fit(train, {"epochs": epochs, "batch_size": 128, "lr": 1e-3, "seed": seed, "val_fraction": 0,
                  "schedule": schedule, "progress": False})
    wall = time.time() - t
    m.eval()
    enc = lambda x: m.encode(x.view(-1, 1, 28, 28))  # noqa: E731
    dec = lambda z: m.decode_logits(z).flatten(1)  # noqa: E731
    return m, wall, enc, dec


def run_pythae(train_x, epochs, seed):
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    class Enc(BaseEncoder):  # the same layers as genlab's MLP VAE encoder + posterior head
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, H1), nn.ReLU(), nn.Linear(H1, H2),
                                     nn.LeakyReLU(0.2), nn.Linear(H2, 2 * LATENT))

        def forward(self, x):
            mu, logvar = self.net(x).chunk(2, 1)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Dec(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(LATENT, H2), nn.ReLU(), nn.Linear(H2, H1), nn.ReLU(),
                                     nn.Linear(H1, 784))

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).view(-1, 1, 28, 28))

    torch.manual_seed(seed)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"),
                encoder=Enc(), decoder=Dec())
    with tempfile.TemporaryDirectory() as out:
        cfg = BaseTrainerConfig(output_dir=out, per_device_train_batch_size=128, num_epochs=epochs,
                                learning_rate=1e-3, seed=seed, no_cuda=True)
        t = time.time()
        TrainingPipeline(model=model, training_config=cfg)(train_data=train_x)
        wall = time.time() - t
    model.eval()

    def enc(x):
        o = model.encoder(x.view(-1, 1, 28, 28))
        return o.embedding, o.log_covariance

    dec = lambda z: model.decoder.net(z)  # noqa: E731  (logits of the same sigmoid output)
    return model, wall, enc, dec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--n-check", type=int, default=100, help="test images for pythae's own get_nll")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/out/vae_fashion_mnist.json")
    _common.add_smoke(ap)
    args = ap.parse_args()
    smoke = _common.start_smoke(args)
    if smoke:
        args.epochs, args.k, args.n_test, args.n_check = 1, 5, 20, 5

    torch.set_num_threads(args.threads)
    splits = _common.splits_or_skip("fashion-mnist", binarize=True, limit=256 if smoke else None)
    train, test = splits["train"], splits["test"]
    x_test = test.x[: args.n_test].flatten(1)
    rows = {}
    for name, schedule in (("genlab", "constant"), ("genlab, cosine lr", "cosine")):
        g_model, g_wall, g_enc, g_dec = run_genlab(train, args.epochs, args.seed, schedule)
        t = time.time()
        rows[name] = {"train_s": g_wall, "nll": iwae_nll(g_enc, g_dec, x_test, args.k), "iwae_s": time.time() - t}
        print(name, rows[name], flush=True)
    try:
        p_model, p_wall, p_enc, p_dec = run_pythae(train.x, args.epochs, args.seed)
        t = time.time()
        rows["pythae"] = {"train_s": p_wall, "nll": iwae_nll(p_enc, p_dec, x_test, args.k), "iwae_s": time.time() - t}
        chk = test.x[: args.n_check]
        torch.manual_seed(args.seed)
        rows["pythae"]["own_get_nll_subset"] = -float(p_model.get_nll(chk, n_samples=args.k, batch_size=args.k))
        rows["pythae"]["our_estimator_same_subset"] = iwae_nll(p_enc, p_dec, chk.flatten(1), args.k)
        print("pythae", rows["pythae"], flush=True)
    except ImportError as e:
        print(f"pythae not installed ({e}): bash scripts/setup.sh bench")

    steps = -(-len(train) // 128)
    print(f"\nbinarised Fashion-MNIST, MLP VAE 784-{H1}-{H2}-{LATENT}, {args.epochs} epochs x {steps} steps "
          f"(batch 128), IWAE K={args.k} on {args.n_test} test images")
    print("| library | train wall s | test NLL (nats) |")
    print("|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['train_s']:.0f} | {r['nll']:.2f} |")
    if "pythae" in rows:
        print(f"genlab - pythae NLL: {rows['genlab']['nll'] - rows['pythae']['nll']:+.2f} nats "
              f"(negative = genlab better); train time ratio pythae/genlab "
              f"{rows['pythae']['train_s'] / rows['genlab']['train_s']:.2f}")
    p = rows.get("pythae")
    _common.ratio("test NLL, nats (lower is better)", rows["genlab"]["nll"], p and p["nll"], "pythae",
                  "" if p else "pythae not installed")
    _common.ratio("training speed (1 / train s)", 1 / rows["genlab"]["train_s"], p and 1 / p["train_s"], "pythae",
                  "" if p else "pythae not installed")
    _common.save({"args": vars(args), "results": rows}, args.out)


if __name__ == "__main__":
    main()
