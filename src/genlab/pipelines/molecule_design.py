"""Steering molecule generators: property-conditioned generation and goal-directed design.

* **Conditioning** (``condition_splits``): each molecule row gets a property token right
  after ``<bos>``, naming the bin its property falls in (``<qed:0.7:0.8>``; bins are
  training-set quantiles), the way conditional language models prefix a control code
  (Keskar et al. 2019, CTRL). A sequence model trained on those rows samples molecules of a
  chosen property range from the prompt ``condition_prompt(model, "qed", 0.85)``; the
  tokens name their ranges, so the saved model needs nothing else to be steered.
  ``conditioning_report`` measures how often samples land in the bin they were asked for.
* **Goal-directed design** (``HillClimb``): the SMILES LSTM hill-climb of GuacaMol (Brown
  et al. 2019; Segler et al. 2018): sample, score, keep the best molecules found so far,
  fine-tune the generator on them, repeat. The objective is a property (``qed``, ``logp``,
  ``-sa``, ...) or any function of SMILES, optionally under a similarity constraint to a
  start molecule (Tanimoto on Morgan radius-2 fingerprints, as in the "rediscovery" and
  "similarity" tasks), which zeroes the score of molecules too far from it.
* **Latent-space optimisation** (``LatentSearch``): for a SMILES VAE, the cross-entropy
  method (Rubinstein 1999) over codes ``z``: draw codes around a mean, decode them
  greedily, score the molecules, refit the mean and spread to the best codes, repeat
  (the continuous-space search of Gomez-Bombarelli et al. 2018, without a surrogate model).
  It starts from the prior, or from the code of a start molecule for a local search. The
  model is not changed.

Fine-tuning goes through the model's own ``fit`` (a fitted model warm-starts), so this
module holds no training loop.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..capabilities import require
from ..data.dataset import Dataset
from ..errors import DataError
from ..registry import PIPELINES
from .molecules import require_molecules, sample_smiles, tokenizer_kind

_TOKEN = re.compile(r"^<(?P<prop>[A-Za-z_]+):(?P<lo>[^:>]+):(?P<hi>[^:>]+)>$")


def _properties() -> dict[str, Callable[[Sequence[str]], np.ndarray]]:
    from ..metrics import molecules as M

    return {"qed": M.qed, "logp": M.logp, "sa": M.sa, "weight": M.weight}


def property_values(prop: str, smiles: Sequence[str], *, n_jobs: int | None = 1) -> np.ndarray:
    """``prop`` (``qed``, ``logp``, ``sa``, ``weight``) of each SMILES; NaN when invalid."""
    props = _properties()
    if prop not in props:
        raise ValueError(f"unknown property {prop!r}; choose one of {sorted(props)}")
    return np.asarray(props[prop](list(smiles), n_jobs=n_jobs), dtype=np.float64)


# ----------------------------------------------------------------------------- conditioning
def _fmt(v: float) -> str:
    return "-inf" if v == -math.inf else "inf" if v == math.inf else f"{v:.4g}"


def condition_splits(splits: dict[str, Dataset], prop: str = "qed", *, bins: int = 4,
                     n_jobs: int | None = 1) -> dict[str, Dataset]:
    """Molecule splits with a property-bin token after ``<bos>`` in every row.

    Args:
        splits: item Datasets of molecules (``meta["molecules"]``, e.g. ``moses``).
        prop: ``qed``, ``logp``, ``sa`` or ``weight``.
        bins: quantile bins of the training molecules' property (equal counts).
    Returns:
        New Datasets, one token wider; the tokenizer vocabulary gains the ``bins`` tokens
        ``<prop:lo:hi>`` at its end; ``meta["condition"]`` records the property and edges.
    """
    require_molecules(splits["train"])
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    train_vals = property_values(prop, splits["train"].meta["items"], n_jobs=n_jobs)
    finite = train_vals[np.isfinite(train_vals)]
    if len(finite) < bins:
        raise DataError(f"too few valid training molecules to cut {prop} into {bins} bins")
    inner = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    edges = [-math.inf, *map(float, inner), math.inf]
    names = [f"<{prop}:{_fmt(a)}:{_fmt(b)}>" for a, b in zip(edges[:-1], edges[1:])]
    tok = dict(splits["train"].meta["tokenizer"])
    if any(t in tok["vocab"] for t in names):
        raise DataError(f"these splits are already conditioned on {prop}")
    base = len(tok["vocab"])
    tok["vocab"] = tuple(tok["vocab"]) + tuple(names)
    out = {}
    for key, ds in splits.items():
        vals = train_vals if key == "train" else property_values(prop, ds.meta["items"], n_jobs=n_jobs)
        which = np.clip(np.searchsorted(inner, np.nan_to_num(vals, nan=float(np.median(finite))), side="right"),
                        0, len(names) - 1)
        x = ds.x
        cond = torch.as_tensor(base + which, dtype=x.dtype)[:, None]
        rows = torch.cat([x[:, :1], cond, x[:, 1:]], dim=1)
        meta = {**ds.meta, "tokenizer": tok, "condition": {"property": prop, "edges": edges, "tokens": names}}
        out[key] = Dataset(rows, kind="sequence", name=ds.name, meta=meta)
    return out


def condition_tokens(model: Any, prop: str | None = None) -> list[tuple[int, str, float, float]]:
    """``[(token id, property, low, high), ...]`` of the model's property tokens."""
    out = []
    for i, t in enumerate(model.config.vocab or ()):
        m = _TOKEN.match(t)
        if m and (prop is None or m["prop"] == prop):
            out.append((i, m["prop"], float(m["lo"]), float(m["hi"])))
    return out


def condition_prompt(model: Any, prop: str, value: float) -> torch.Tensor:
    """Prompt ids ``<bos> <prop:lo:hi>`` for the bin holding ``value``."""
    from ..data.tokenizers import BOS_ID

    toks = condition_tokens(model, prop)
    if not toks:
        raise ValueError(f"the model was not trained on {prop}-conditioned molecules "
                         "(see genlab.pipelines.molecule_design.condition_splits)")
    for i, _, lo, hi in toks:
        if lo <= value < hi:
            return torch.tensor([BOS_ID, i])
    raise ValueError(f"{prop}={value} is outside every bin")  # pragma: no cover - bins cover R


def conditioning_report(model: Any, prop: str, *, n: int = 500, seed: int = 0, n_jobs: int | None = 1,
                        **sample_kwargs: Any) -> list[dict[str, float]]:
    """Per bin: sample ``n`` molecules with its prompt; their validity, mean property and
    the share inside the requested bin (an unconditioned model gets ~1/bins there)."""
    rows = []
    for k, (i, _, lo, hi) in enumerate(condition_tokens(model, prop)):
        from ..data.tokenizers import BOS_ID

        g = torch.Generator().manual_seed(seed + k)
        smi = sample_smiles(model, n, generator=g, prompt=torch.tensor([BOS_ID, i]), **sample_kwargs)
        v = property_values(prop, smi, n_jobs=n_jobs)
        ok = np.isfinite(v)
        rows.append({"bin": k, "low": lo, "high": hi, "valid": float(ok.mean()),
                     "mean": float(v[ok].mean()) if ok.any() else math.nan,
                     "in_bin": float(((v >= lo) & (v < hi))[ok].mean()) if ok.any() else math.nan})
    return rows


# ----------------------------------------------------------------------------- hill climbing
def tanimoto_to(ref: str, smiles: Sequence[str]) -> np.ndarray:
    """Tanimoto similarity (Morgan radius 2, 2048 bits) of each SMILES to ``ref``; NaN if invalid."""
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    from ..chem import to_mol

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    m = to_mol(ref)
    if m is None:
        raise ValueError(f"the reference molecule {ref!r} is not valid SMILES")
    fr = gen.GetFingerprint(m)
    out = np.full(len(smiles), np.nan)
    for j, s in enumerate(smiles):
        mol = to_mol(s) if s else None
        if mol is not None:
            out[j] = DataStructs.TanimotoSimilarity(fr, gen.GetFingerprint(mol))
    return out


def encode_molecules(model: Any, smiles: Sequence[str]) -> tuple[torch.Tensor, list[str]]:
    """Rows ``<bos> tokens <eos> <pad>...`` of the model's width for the SMILES it can
    spell (SELFIES for a SELFIES model); the others (unknown tokens, too long) are skipped."""
    from ..chem import to_selfies
    from ..data.text import item_rows
    from ..data.tokenizers import from_config

    cfg = model.config
    tok = from_config(cfg.tokenizer, cfg.vocab, cfg.merges)
    width = cfg.data_shape[0]
    ids, kept = [], []
    for s in smiles:
        text = to_selfies(s) if cfg.tokenizer == "selfies" else s
        if not text:
            continue
        try:
            t = tok.encode(text)
        except ValueError:
            continue
        if len(t) + 2 <= width:
            ids.append(t)
            kept.append(s)
    if not ids:
        return torch.zeros(0, width, dtype=torch.long), []
    return item_rows(ids, width), kept


class Objective:
    """A design objective: a property name (``"qed"``, ``"logp"``, ``"-sa"``: a leading
    ``-`` minimises) or a function ``list[str] -> array`` (NaN for invalid molecules),
    optionally under a similarity constraint (molecules with Tanimoto similarity to
    ``similar_to`` below ``min_similarity`` score 0)."""

    def __init__(self, objective: str | Callable = "qed", *, similar_to: str | None = None,
                 min_similarity: float = 0.0, n_jobs: int | None = 1):
        if not 0 <= min_similarity <= 1:
            raise ValueError(f"min_similarity must be in [0, 1], got {min_similarity}")
        if min_similarity > 0 and not similar_to:
            raise ValueError("min_similarity needs similar_to (a SMILES)")
        if isinstance(objective, str):
            property_values(objective.lstrip("-"), ["C"])  # unknown names fail here, not later
        elif not callable(objective):
            raise ValueError(f"objective must be a property name or a function, got {objective!r}")
        self.objective, self.n_jobs = objective, n_jobs
        self.similar_to, self.min_similarity = similar_to, float(min_similarity)

    def __call__(self, smiles: Sequence[str]) -> np.ndarray:
        if callable(self.objective):
            s = np.asarray(self.objective(list(smiles)), dtype=np.float64)
        else:
            sign = -1.0 if self.objective.startswith("-") else 1.0
            s = sign * property_values(self.objective.lstrip("-"), smiles, n_jobs=self.n_jobs)
        if self.similar_to and self.min_similarity > 0:
            sim = tanimoto_to(self.similar_to, smiles)
            s = np.where(np.isfinite(sim) & (sim < self.min_similarity), 0.0, s)
        return s


def _pool_round(pool: dict[str, float], smi: Sequence[str | None], objective: Objective
                ) -> tuple[dict[str, Any], list[str | None]]:
    """Score one round's SMILES into ``pool`` (canonical SMILES -> score): the round's
    summary and each sample's canonical SMILES (``None`` if invalid)."""
    from ..chem import canonical

    can = [canonical(s) if s else None for s in smi]
    valid = [c for c in can if c]
    uniq = list(dict.fromkeys(valid))
    sc = objective(uniq) if uniq else np.zeros(0)
    for c, v in zip(uniq, sc):
        if np.isfinite(v):
            pool[c] = float(v)
    top100 = sorted(pool.values(), reverse=True)[:100]
    return {"valid": len(valid) / max(1, len(smi)), "unique": len(uniq) / max(1, len(valid)),
            "mean": float(np.nanmean(sc)) if len(sc) and np.isfinite(sc).any() else math.nan,
            "max": float(np.nanmax(sc)) if len(sc) and np.isfinite(sc).any() else math.nan,
            "top100_mean": float(np.mean(top100)) if top100 else math.nan}, can


@PIPELINES.register("goal-directed", aliases=("hill-climb",))
class HillClimb:
    """Goal-directed molecule design by iterated fine-tuning on the best molecules.

    Args:
        model: a fitted sequence model trained on molecules (it is fine-tuned in place).
        objective: ``"qed"``, ``"logp"``, ``"-sa"`` (a leading ``-`` minimises), or a function
            ``list[str] -> array`` of scores (NaN for invalid molecules).
        similar_to: a SMILES; with ``min_similarity`` > 0, molecules less similar to it
            score 0.
        min_similarity: the Tanimoto threshold of that constraint.
        n_jobs: processes for scoring.

    ``__call__`` returns ``{"history": [per round: valid, mean/max score, top-100 mean],
    "top": [(smiles, score), ...] best first}``.
    """

    def __init__(self, model: Any, objective: str | Callable = "qed", *, similar_to: str | None = None,
                 min_similarity: float = 0.0, n_jobs: int | None = 1):
        if tokenizer_kind(model) not in ("smiles", "selfies"):
            raise ValueError("HillClimb needs a model trained on molecules (tokenizer 'smiles' or 'selfies')")
        self.model = model
        self.objective = Objective(objective, similar_to=similar_to, min_similarity=min_similarity, n_jobs=n_jobs)

    def score(self, smiles: Sequence[str]) -> np.ndarray:
        """Objective values (NaN for invalid SMILES), with the similarity constraint applied."""
        return self.objective(smiles)

    def __call__(self, *, rounds: int = 5, n_samples: int = 1024, keep: int = 256, epochs: int = 1,
                 lr: float = 5e-4, batch_size: int = 64, seed: int = 0, progress: bool | None = None,
                 **sample_kwargs: Any) -> dict[str, Any]:
        from tqdm.auto import tqdm

        if rounds < 1 or n_samples < 1 or keep < 1:
            raise ValueError("rounds, n_samples and keep must be >= 1")
        pool: dict[str, float] = {}
        history = []
        g = torch.Generator().manual_seed(seed)
        for r in tqdm(range(rounds), desc="hill climbing", disable=progress is False):
            smi = sample_smiles(self.model, n_samples, generator=g, progress=False, **sample_kwargs)
            history.append({"round": r, **_pool_round(pool, smi, self.objective)[0]})
            best = sorted(pool.items(), key=lambda kv: -kv[1])[:keep]
            if r == rounds - 1:
                break
            x, kept = encode_molecules(self.model, [s for s, _ in best])
            if len(kept) < 2:
                raise DataError("fewer than 2 of the best molecules can be written in the model's "
                                "vocabulary: nothing to fine-tune on")
            ds = Dataset(x, kind="sequence", name="hill-climb",
                         meta={"tokenizer": {"tokenizer": self.model.config.tokenizer,
                                             "vocab": tuple(self.model.config.vocab),
                                             "merges": tuple(self.model.config.merges)},
                               "start": self.model.config.start, "layout": "items", "items": kept,
                               "molecules": True})
            self.model.fit(ds, {"epochs": epochs, "lr": lr, "batch_size": min(batch_size, len(kept)),
                                "val_fraction": 0, "progress": False, "seed": seed + r})
        return {"history": history, "top": sorted(pool.items(), key=lambda kv: -kv[1])}


@PIPELINES.register("latent-optimization", aliases=("latent-search",))
class LatentSearch:
    """Goal-directed design in a SMILES VAE's latent space by the cross-entropy method.

    Each round draws ``n_samples`` codes ``z ~ N(mean, diag(std^2))``, decodes them
    greedily (one molecule per code), scores the molecules and refits ``mean`` / ``std``
    to the ``elite`` share of best-scoring codes (smoothed by ``smoothing``; ``std`` is
    kept above ``min_std``). The first round's mean is the prior's (0) or, with
    ``start``, the posterior mean of that molecule. The VAE is not changed.

    Args:
        model: a fitted ``SeqVAE`` trained on SMILES or SELFIES.
        objective, similar_to, min_similarity, n_jobs: as in ``HillClimb``.

    ``__call__`` returns ``{"history": [...], "top": [(smiles, score), ...] best first,
    "mean": the final mean code}``.
    """

    #: what the model must be able to do (its tags; and its modality must be molecule)
    requires = ("latent", "text_output")

    def __init__(self, model: Any, objective: str | Callable = "qed", *, similar_to: str | None = None,
                 min_similarity: float = 0.0, n_jobs: int | None = 1):
        tags = require(model, *self.requires, what="LatentSearch (a sequence VAE: seqvae / smiles-vae)")
        if tags.modality != "molecule":
            raise ValueError("LatentSearch needs a VAE trained on molecules (tokenizer 'smiles' or 'selfies')")
        self.model = model
        self.objective = Objective(objective, similar_to=similar_to, min_similarity=min_similarity, n_jobs=n_jobs)

    def __call__(self, *, rounds: int = 10, n_samples: int = 256, elite: float = 0.1, start: str | None = None,
                 std: float = 1.0, min_std: float = 0.05, smoothing: float = 0.7, seed: int = 0,
                 progress: bool | None = None) -> dict[str, Any]:
        from tqdm.auto import tqdm

        from .molecules import to_smiles

        if rounds < 1 or n_samples < 2:
            raise ValueError("rounds must be >= 1 and n_samples >= 2")
        if not 0 < elite <= 0.5:
            raise ValueError(f"elite must be a share in (0, 0.5], got {elite}")
        if not (std > 0 and 0 < min_std <= std and 0 < smoothing <= 1):
            raise ValueError("need std > 0, 0 < min_std <= std and 0 < smoothing <= 1")
        d = self.model.config.latent_dim
        mean, sd = torch.zeros(d), torch.full((d,), float(std))
        if start is not None:
            x, kept = encode_molecules(self.model, [start])
            if not kept:
                raise ValueError(f"the start molecule {start!r} cannot be written in the model's vocabulary")
            mean = self.model.encode(x)[0][0]
        g = torch.Generator().manual_seed(seed)
        n_elite = max(2, int(round(elite * n_samples)))
        pool: dict[str, float] = {}
        history = []
        for r in tqdm(range(rounds), desc="latent search", disable=progress is False):
            z = mean + sd * torch.randn(n_samples, d, generator=g)
            smi = to_smiles(self.model, self.model.decode(z))
            summary, can = _pool_round(pool, smi, self.objective)
            history.append({"round": r, **summary, "std": float(sd.mean())})
            score = torch.tensor([pool.get(c, -math.inf) if c else -math.inf for c in can])
            ok = torch.isfinite(score)
            if int(ok.sum()) < 2:
                continue  # too few valid molecules to refit: draw again around the same mean
            best = torch.argsort(score, descending=True)[:min(n_elite, int(ok.sum()))]  # invalid: -inf, last
            mean = smoothing * z[best].mean(0) + (1 - smoothing) * mean
            sd = (smoothing * z[best].std(0) + (1 - smoothing) * sd).clamp_min(min_std)
        return {"history": history, "top": sorted(pool.items(), key=lambda kv: -kv[1]), "mean": mean}
