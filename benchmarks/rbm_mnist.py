"""RBM on binarised mnist-5k: PCD training, AIS log-likelihood, a sample grid.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/rbm_mnist.py --epochs 30 --hidden 200 --ais-betas 3000

Writes ``benchmarks/out/rbm_mnist.json`` and ``benchmarks/out/rbm_mnist_samples.png``
(64 samples, 1000 block-Gibbs steps each, shown as visible-unit means). CPU, 1 thread.
The test log-likelihood is ``-F(v) - log Z`` with ``log Z`` from one AIS run
(``--ais-betas`` intermediate distributions, ``--ais-chains`` particles); AIS tends to
underestimate ``log Z``, so the figure is an optimistic estimate within its standard error.
Beside it, the exact test log-likelihood of independent pixels (each a Bernoulli with its
training mean, add-one smoothed): an RBM with no hidden units.

    python benchmarks/rbm_mnist.py --smoke     # 256 images, 1 epoch, 16 hidden, AIS with 50 betas
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import _common  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.5,
                    help="SGD momentum (genlab's default 0.9 makes PCD collapse into one mode)")
    ap.add_argument("--ais-betas", type=int, default=1000)
    ap.add_argument("--ais-chains", type=int, default=100)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"))
    _common.add_smoke(ap)
    a = ap.parse_args()
    chains, steps, limit = 100, 1000, None
    if _common.start_smoke(a):
        a.epochs, a.hidden, a.ais_betas, a.ais_chains = 1, 16, 50, 10
        chains, steps, limit = 10, 20, 256
        a.out = str(_common.out_path("benchmarks/out"))

    import torch

    torch.set_num_threads(1)
    from genlab.models.pgm import RBM
    from genlab.report.figures import save_grid

    splits = _common.splits_or_skip("mnist-5k", binarize=True, limit=limit)
    train, test = splits["train"], splits["test"]
    m = RBM(hidden=a.hidden, persistent=True, n_chains=chains, sample_steps=steps,
            ais_betas=a.ais_betas, ais_chains=a.ais_chains)
    t0 = time.perf_counter()
    m.fit(train, {"epochs": a.epochs, "batch_size": 32, "lr": a.lr, "optimizer": "sgd",
                  "momentum": a.momentum, "progress": False, "seed": 0})
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    log_z, se = m.ais_log_partition(generator=torch.Generator().manual_seed(0))
    t_ais = time.perf_counter() - t0
    with torch.no_grad():
        ll_test = float((-m.free_energy(test.x.flatten(1)) - log_z).mean())
        ll_train = float((-m.free_energy(train.x.flatten(1)) - log_z).mean())
    p = (train.x.flatten(1).sum(0) + 1) / (len(train) + 2)  # independent pixels, add-one smoothed
    xt = test.x.flatten(1)
    ll_pixels = float((xt * p.log() + (1 - xt) * (1 - p).log()).sum(1).mean())
    t0 = time.perf_counter()
    x = m.sample(64, generator=torch.Generator().manual_seed(0))
    t_sample = time.perf_counter() - t0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    save_grid(x, out / "rbm_mnist_samples.png", nrow=8)
    res = {"dataset": "mnist-5k binarised (threshold 0.5)", "n_train": len(train), "n_test": len(test),
           "hidden": a.hidden, "epochs": a.epochs, "optimizer": f"sgd lr {a.lr} momentum {a.momentum}, batch 32, PCD-1, {chains} chains",
           "fit_s": round(t_fit, 1), "ais_betas": a.ais_betas, "ais_chains": a.ais_chains,
           "log_z": round(log_z, 2), "log_z_se": round(se, 3), "ais_s": round(t_ais, 1),
           "test_loglik_nats": round(ll_test, 2), "train_loglik_nats": round(ll_train, 2),
           "independent_pixels_test_loglik_nats": round(ll_pixels, 2),
           f"sample_64x{steps}_steps_s": round(t_sample, 1), "threads": 1,
           **({"smoke": True} if _common.SMOKE else {})}
    (out / "rbm_mnist.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res))
    _common.ratio("test NLL, nats (lower is better)", -ll_test, -ll_pixels, "independent pixels")


if __name__ == "__main__":
    main()
