"""The test-split metrics every finished run records in ``eval.json`` (moved from
``genlab.runs``, which keeps ``evaluate_model`` as an alias for one release):
``genlab.workflow.train_run`` computes them after training; ``genlab evaluate`` adds the
sample-based scores (``genlab.evaluation.evaluate``) beside them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ..base import atomic_write_json, select_log_prob_options
from ..capabilities import tags_of
from ..train import Trainer


@torch.no_grad()
def evaluate_model(model: Any, test: Any, *, max_examples: int = 2000, iwae_k: int = 200,
                   seed: int = 0) -> dict[str, float]:
    """Test-split metrics every run records.

    * every scalar the model's ``forward`` reports (loss, and for a VAE recon/kl/elbo),
      averaged over the test examples;
    * reconstruction MSE and PSNR (data range 1) for models that ``reconstruct``;
    * for ``log_prob_kind != 'none'``: NLL in nats and bits/dim when the data suits the
      likelihood (a Bernoulli VAE needs binary data), on up to ``max_examples`` rows.
    """
    from ..metrics.functional import psnr

    tags = tags_of(model)
    if tags.self_scoring:
        return model.evaluate(test)  # families fitted by their own estimator score themselves
    # a subset is in memory (a packed, memory-mapped split is read here, at most max_examples rows)
    ds = test.subset(slice(0, min(len(test), max_examples)))
    out: dict[str, float] = {"n_test": float(len(ds))}
    scores = Trainer({"batch_size": 256}).evaluate(model, ds)
    out.update({f"test_{k}": v for k, v in scores.items()})
    if tags.reconstruction:
        y = ds.y if tags.conditional else None
        rec = model.reconstruct(ds.x, y) if y is not None else model.reconstruct(ds.x)
        out["recon_mse"] = float((rec - ds.x).pow(2).mean())
        if ds.kind == "image":
            out["recon_psnr_db"] = float(psnr(rec, ds.x).mean())
    from ..progress import task

    if tags.per_token_nll:  # sequence models: per real token, padding excluded
        with task("test NLL per token", len(ds)):
            out["nll_per_token"] = float(model.nll_per_token(ds.x))
        out["bits_per_token"] = out["nll_per_token"] / math.log(2)
        # a diverged model's NLL can be huge: exp() past ~709 overflows a double
        out["perplexity"] = math.exp(out["nll_per_token"]) if out["nll_per_token"] < 700 else math.inf
        return out
    if model.log_prob_kind != "none":
        try:
            y = ds.y if tags.conditional else None
            g = torch.Generator().manual_seed(seed)
            uses_k = "k" in tags.log_prob_options  # an importance-sampled (IWAE) bound
            what = f"IWAE bound, k={iwae_k}" if uses_k else (
                "variational bound" if tags.log_prob_kind == "lower_bound" else tags.log_prob_kind)
            with task(f"test NLL ({what})", len(ds)):
                lp = model.log_prob(ds.x, **select_log_prob_options(model, y=y, k=iwae_k, generator=g))
            nll = float(-lp.mean())
            out["nll_nats"] = nll
            out["bits_per_dim"] = nll / (math.prod(ds.shape) * math.log(2))
            if uses_k:
                out["iwae_k"] = float(iwae_k)
        except ValueError as e:  # e.g. Bernoulli likelihood on non-binary data
            out["nll_note"] = str(e)  # type: ignore[assignment]
    return out


def write_test_metrics(out: Path, scores: dict[str, Any], *, resumed_at: str | None) -> None:
    """Write the test metrics to ``eval.json``, keeping what ``genlab evaluate`` added
    there before a resume (marked as computed before the latest training)."""
    old: dict[str, Any] = {}
    try:
        old = json.loads((out / "eval.json").read_text())
    except (OSError, ValueError):
        pass
    rec: dict[str, Any] = {"split": "test", "metrics": scores}
    if isinstance(old, dict) and old.get("evaluation"):
        rec["evaluation"] = old["evaluation"]
        rec["evaluation_stale"] = (f"computed before the run was resumed ({resumed_at}); "
                                   "run genlab evaluate again for the current weights")
    atomic_write_json(out / "eval.json", rec)
