"""Molecule generation: SMILES from a trained sequence model, and MOSES evaluation of a run.

Any model trained on a molecule data set (``moses``, ``moses-selfies``, a user's ``.smi``)
generates token rows; ``to_smiles`` turns them into SMILES (decoding SELFIES, dropping a
property-condition token, see ``molecule_design``). ``MoleculeGenerator`` is the pipeline:
``gen(n)`` draws molecules, ``gen.evaluate(...)`` scores them with the whole MOSES metric
set (``genlab.metrics.molecules``). ``evaluate_molecule_run`` is what ``genlab evaluate RUN``
does for a molecule run: it scores ``n`` samples against the run's test (and
scaffold-test) molecules, scores held-out validation molecules the same way as the
real-vs-real floor, draws a grid of generated molecules and the property distributions,
and stores everything in ``eval.json`` and the report.
"""
from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..registry import PIPELINES

_CONDITION = re.compile(r"^<[^<>]*>")  # a leading property token such as <qed:0.62:0.78>


def tokenizer_kind(model: Any) -> str:
    return getattr(model.config, "tokenizer", "")


def to_smiles(model: Any, x: torch.Tensor) -> list[str]:
    """Generated token rows -> SMILES strings (``""`` where a row decodes to nothing).

    SELFIES rows are decoded to SMILES (every SELFIES string is a molecule); a leading
    property-condition token is dropped."""
    if not hasattr(model, "samples_to_text"):
        raise TypeError(f"{type(model).__name__} does not generate token sequences")
    texts = [_CONDITION.sub("", t) for t in model.samples_to_text(x)]
    if tokenizer_kind(model) != "selfies":
        return texts
    from ..chem import from_selfies

    out = []
    for t in texts:
        try:
            out.append(from_selfies(t) if t else "")
        except (ValueError, TypeError):
            out.append("")
    return out


def sample_smiles(model: Any, n: int, *, generator: torch.Generator | None = None, batch_size: int = 1000,
                  progress: bool | None = None, **sample_kwargs: Any) -> list[str]:
    """``n`` SMILES from ``model`` in batches (``sample_kwargs``: temperature, prompt, ...)."""
    from tqdm.auto import tqdm

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    out: list[str] = []
    bar = tqdm(total=n, desc="sampling molecules", unit="mol", disable=not progress if progress is not None else n < 5000)
    with bar:
        while len(out) < n:
            m = min(batch_size, n - len(out))
            out += to_smiles(model, model.sample(m, generator=generator, **sample_kwargs))
            bar.update(m)
    return out


def is_molecule_data(ds: Any) -> bool:
    return bool(getattr(ds, "meta", {}).get("molecules"))


@PIPELINES.register("molecule-generation", aliases=("molecules",))
class MoleculeGenerator:
    """Draw molecules from a model trained on SMILES/SELFIES and score them (MOSES).

    Example::

        gen = MoleculeGenerator.from_run("runs/smiles-lstm")
        smiles = gen(1000, seed=0)
        gen.evaluate(n=30000, n_jobs=None)     # MOSES metrics against MOSES test sets
    """

    def __init__(self, model: Any):
        if not hasattr(model, "samples_to_text"):
            raise TypeError(f"MoleculeGenerator needs a sequence model, got {type(model).__name__}")
        self.model = model

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "MoleculeGenerator":
        from ..runs import Run

        return cls(Run(run_dir).model())

    def __call__(self, n: int, *, seed: int = 0, **sample_kwargs: Any) -> list[str]:
        return sample_smiles(self.model, n, generator=torch.Generator().manual_seed(seed), **sample_kwargs)

    def evaluate(self, n: int = 30000, *, seed: int = 0, train: Any = None, test: Any = None,
                 test_scaffolds: Any = None, n_jobs: int | None = None, **kwargs: Any) -> dict[str, float]:
        """MOSES metrics of ``n`` samples (``train``/``test``/``test_scaffolds`` as in
        ``genlab.metrics.molecules.moses_metrics``: None = the MOSES sets)."""
        from ..metrics.molecules import moses_metrics

        return moses_metrics(self(n, seed=seed), train=train, test=test, test_scaffolds=test_scaffolds,
                             n_jobs=n_jobs, **kwargs)


# ----------------------------------------------------------------------------- a run
def _is_moses(run: Any) -> bool:
    return str(run.info.get("data", "")).startswith("moses")


def evaluate_molecule_run(run: Any, model: Any, splits: dict[str, Any], *, n: int = 10000, seed: int = 0,
                          n_jobs: int | None = None, floor: bool = True, progress: bool | None = None,
                          report: bool = True) -> dict[str, Any]:
    """``genlab evaluate`` for a molecule run (see the module docstring).

    References: for a MOSES run the full MOSES test / scaffold-test sets (their published
    statistics) and the whole MOSES training set for novelty; for a user's file its own
    test split and training molecules. The floor scores ``min(n, len(val))`` held-out
    validation molecules with the same references."""
    from ..metrics.evaluate import _row, _store
    from ..metrics.molecules import higher_is_better, moses_metrics, moses_reference, moses_train

    if _is_moses(run):
        refs = {"train": moses_train(), "test": moses_reference("test"),
                "test_scaffolds": moses_reference("test_scaffolds")}
        ref_note = "MOSES test / scaffold-test (published statistics), MOSES train for novelty"
    else:
        from ..metrics.molecules import KnownMolecules, ReferenceStats

        # featurised once: both the samples and the floor are scored against them
        refs = {"train": KnownMolecules.from_smiles(splits["train"].meta["items"], n_jobs=n_jobs),
                "test": ReferenceStats.from_smiles(splits["test"].meta["items"], n_jobs=n_jobs),
                "test_scaffolds": False}
        ref_note = "the run's test molecules; its training molecules for novelty"
    k = tuple(v for v in (1000, 10000) if v <= n) or (n,)
    gen = sample_smiles(model, int(n), generator=torch.Generator().manual_seed(seed), progress=progress)
    n_valid = sum(bool(s) and _valid(s) for s in gen)
    if not n_valid:  # nothing to featurise: say so instead of failing in the metrics
        scores = {"valid": 0.0}
    else:
        scores = moses_metrics(gen, **refs, n_jobs=n_jobs, k=k, progress=progress)
    floor_scores: dict[str, float] = {}
    n_floor = None
    if floor and "val" in splits:
        real = list(splits["val"].meta["items"])[:int(n)]
        n_floor = len(real)
        if n_floor >= 2:
            floor_scores = moses_metrics(real, **{**refs, "train": False}, n_jobs=n_jobs,
                                         k=tuple(v for v in k if v <= n_floor) or (n_floor,), progress=progress)
    hib = higher_is_better(k)
    from ..metrics.evaluate import molecule_feature_space

    rows = [_row(m, float(v), floor_scores.get(m), molecule_feature_space(m), hib.get(m))
            for m, v in scores.items()]
    figures = {}
    valid = [s for s in gen if s and _valid(s)][:24]
    if valid:
        from ..chem import save_grid

        save_grid(valid, run.figure("eval_molecules.png"), per_row=6, size=220)
        figures["eval_molecules.png"] = f"The first {len(valid)} valid generated molecules (seed {seed})."
    ref_items = list(splits["test"].meta["items"])[:int(n)]
    if plot_properties(gen, ref_items, run.figure("eval_properties.png")):
        figures["eval_properties.png"] = ("Property distributions of the generated molecules beside the test "
                                          "molecules (logP, SA, QED, molecular weight).")
    record = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "n_fake": int(n),
              "n_real": len(ref_items), "n_floor": n_floor, "seed": seed, "judge": "RDKit / ChemNet",
              "metrics": list(scores), "rows": rows, "figures": figures, "closest_pairs": [],
              "notes": [f"references: {ref_note}; floor: {n_floor} held-out validation molecules "
                        "scored the same way (Novelty is not defined for them)" if n_floor else
                        f"references: {ref_note}"]}
    if not n_valid:
        record["notes"].append(f"none of the {n} samples is a valid molecule: the other MOSES metrics "
                               "need valid molecules (train longer)")
    _store(run, record, report)
    return record


def _valid(smiles: str) -> bool:
    from ..chem import to_mol

    return to_mol(smiles) is not None


def plot_properties(gen: Sequence[str], ref: Sequence[str], path: str | Path) -> bool:
    """Histograms of logP, SA, QED and weight for generated vs reference SMILES; False
    when no generated molecule is valid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..metrics.molecules import logp, qed, sa, weight

    props = {"logP": logp, "SA": sa, "QED": qed, "molecular weight": weight}
    g = {k: f(list(gen)) for k, f in props.items()}
    if not np.isfinite(g["QED"]).any():
        return False
    r = {k: f(list(ref)) for k, f in props.items()}
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, k in zip(axes, props):
        a, b = g[k][np.isfinite(g[k])], r[k][np.isfinite(r[k])]
        lo, hi = np.percentile(np.concatenate([a, b]), [0.5, 99.5])
        bins = np.linspace(lo, hi, 40)
        ax.hist(b, bins=bins, density=True, alpha=0.5, label=f"test ({len(b)})")
        ax.hist(a, bins=bins, density=True, alpha=0.5, label=f"generated ({len(a)})")
        ax.set_title(k)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def require_molecules(ds: Any) -> None:
    if not is_molecule_data(ds):
        raise DataError("this needs a molecule data set (moses, moses-selfies, or a .smi/.csv of SMILES)")
