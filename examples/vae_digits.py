"""Train a VAE on the embedded 8x8 digits, sample from it, save and reload it.

    python examples/vae_digits.py
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import genlab  # noqa: E402
from genlab.data import load_splits  # noqa: E402
from genlab.report import save_grid  # noqa: E402

splits = load_splits("digits")
vae = genlab.models.VAE(latent_dim=16, hidden=(512, 256))
vae.fit(splits["train"], {"epochs": 50, "lr": 1e-3, "batch_size": 32}, val=splits["val"])
x = vae.sample(64, generator=torch.Generator().manual_seed(0))
save_grid(x, "vae_digits_samples.png")
vae.save("vae_digits_model")
same = genlab.load("vae_digits_model")
assert torch.equal(same.sample(4, generator=torch.Generator().manual_seed(1)),
                   vae.sample(4, generator=torch.Generator().manual_seed(1)))
print("samples in vae_digits_samples.png; model in vae_digits_model/")
