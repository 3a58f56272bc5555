"""Molecule generation: SMILES from a trained sequence model, and MOSES evaluation of a run.

Any model trained on a molecule data set (``moses``, ``moses-selfies``, a user's ``.smi``)
generates token rows; ``to_smiles`` turns them into SMILES (decoding SELFIES, dropping a
property-condition token, see ``molecule_design``). ``MoleculeGenerator`` is the pipeline:
``gen(n)`` draws molecules, ``gen.evaluate(...)`` scores them with the whole MOSES metric
set (``genlab.metrics.molecules``). What ``genlab evaluate RUN`` does for a molecule run
(``evaluate_molecule_run``) lives in ``genlab.evaluation.molecules``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..capabilities import SAMPLE_WRITERS, require
from ..errors import DataError
from ..registry import PIPELINES

_CONDITION = re.compile(r"^<[^<>]*>")  # a leading property token such as <qed:0.62:0.78>


def tokenizer_kind(model: Any) -> str:
    # the molecule pipeline's own detail (SMILES or SELFIES rows); modality is in model.tags
    return getattr(model.config, "tokenizer", "")


def to_smiles(model: Any, x: torch.Tensor) -> list[str]:
    """Generated token rows -> SMILES strings (``""`` where a row decodes to nothing).

    SELFIES rows are decoded to SMILES (every SELFIES string is a molecule); a leading
    property-condition token is dropped."""
    require(model, "text_output", what="decoding samples to SMILES")
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

    #: what the model must be able to do
    requires = ("text_output",)

    def __init__(self, model: Any):
        require(model, *self.requires, what="MoleculeGenerator")
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


def require_molecules(ds: Any) -> None:
    if not is_molecule_data(ds):
        raise DataError("this needs a molecule data set (moses, moses-selfies, or a .smi/.csv of SMILES)")


def __getattr__(name: str) -> Any:
    """Alias for one release: the run evaluation moved to ``genlab.evaluation.molecules``."""
    if name in ("evaluate_molecule_run", "plot_properties"):
        from ..evaluation import molecules

        return getattr(molecules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@SAMPLE_WRITERS.register(".smi", requires={"modality": "molecule"})
def _smiles_writer(job: Any) -> None:
    """``genlab sample RUN -o s.smi``: one SMILES per line (SELFIES decoded, a condition
    token dropped; a row that decodes to nothing is an empty line, so line i is sample i)."""
    with job.replacing() as tmp, open(tmp, "w", encoding="utf-8") as f:
        for x in job.chunks():
            f.writelines(s + "\n" for s in to_smiles(job.model, x))
