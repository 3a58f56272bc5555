"""What ``genlab evaluate RUN`` does for a molecule run (moved from
``genlab.pipelines.molecules``, which keeps an alias for one release).

It scores ``n`` samples against the run's test (and scaffold-test) molecules, scores
held-out validation molecules the same way as the real-vs-real floor, draws a grid of
generated molecules and the property distributions, and stores everything in
``eval.json`` (the report shows it once rewritten).
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..pipelines.molecules import sample_smiles
from ..capabilities import EVALUATORS
from .evaluate import _write_record, describe_sets, molecule_feature_space, score_row, store_record


def _is_moses(run: Any) -> bool:
    return str(run.info.get("data", "")).startswith("moses")


def evaluate_molecule_run(run: Any, model: Any, splits: dict[str, Any], *, n: int = 10000, seed: int = 0,
                          n_jobs: int | None = None, floor: bool = True,
                          progress: bool | None = None) -> dict[str, Any]:
    """``genlab evaluate`` for a molecule run (see the module docstring).

    References: for a MOSES run the full MOSES test / scaffold-test sets (their published
    statistics) and the whole MOSES training set for novelty; for a user's file its own
    test split and training molecules. The floor scores ``min(n, len(val))`` held-out
    validation molecules with the same references."""
    from ..metrics.molecules import higher_is_better, moses_reference, moses_train

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
    from ..metrics.molecules import MoleculeMetrics
    from ..train import distributed

    rank, world = distributed.rank_and_world()
    if world > 1:
        distributed.setup()
    # chunk i of CHUNK molecules from its own generator; under torchrun each process draws
    # and featurises a contiguous block of chunks, and the featurised molecules are
    # gathered in rank (= chunk) order: the same molecules and scores as one process
    chunks = list(range(-(-int(n) // CHUNK)))
    mine = chunks[rank * len(chunks) // world:(rank + 1) * len(chunks) // world]
    from ..progress import Progress

    gen = []
    with Progress(min(int(n), len(mine) * CHUNK), "sampling molecules", "mol",
                  enabled=progress is not False and rank == 0 and int(n) > CHUNK) as bar:
        for i in mine:
            part = _chunk_smiles(model, int(n), seed, i)
            gen += part
            bar.update(len(part))
    mm = MoleculeMetrics(**refs, n_jobs=n_jobs, k=k, progress=progress)
    mm.update(gen)
    mm.sync()
    # the floor: real validation molecules, scored the same way; under torchrun each
    # process featurises (ChemNet included) its block of them
    floor_mm, n_floor = None, None
    if floor and "val" in splits:
        real = list(splits["val"].meta["items"])[:int(n)]
        n_floor = len(real)
        if n_floor >= 2:
            floor_mm = MoleculeMetrics(**{**refs, "train": False}, n_jobs=n_jobs,
                                       k=tuple(v for v in k if v <= n_floor) or (n_floor,), progress=progress)
            floor_mm.update(real[rank * n_floor // world:(rank + 1) * n_floor // world])
            floor_mm.sync()
    if world > 1:
        import torch.distributed as dist

        parts: list[Any] = [None] * world
        dist.all_gather_object(parts, gen)
        gen = [s for p in parts for s in p]
        if rank != 0:
            return None
    n_valid = sum(bool(s) and _valid(s) for s in gen)
    if not n_valid:  # nothing to featurise: say so instead of failing in the metrics
        scores = {"valid": 0.0}
    else:
        scores = mm.compute()
    floor_scores: dict[str, float] = floor_mm.compute() if floor_mm is not None else {}
    hib = higher_is_better(k)
    rows = [score_row(m, float(v), floor_scores.get(m), molecule_feature_space(m), hib.get(m))
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
    store_record(run, record)
    return record


CHUNK = 1000  # molecules per seeded chunk (chunk 0 is seeded with the seed itself)


def _chunk_smiles(model: Any, n: int, seed: int, i: int) -> list[str]:
    """Chunk ``i`` of ``n`` generated SMILES, drawn with ``sample_io.chunk_generator(seed, i)``."""
    from ..sample_io import chunk_generator

    m = min(CHUNK, n - i * CHUNK)
    return sample_smiles(model, m, generator=chunk_generator(seed, i), batch_size=CHUNK, progress=False)


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


@EVALUATORS.register("molecules", requires={"modality": "molecule"}, order=20, shares_work=True,
                     what="molecule models, scored with the MOSES metrics against held-out floors")
def evaluate_molecules(run: Any, model: Any, splits: dict[str, Any], *, n: int, seed: int,
                       progress: bool | None = None, **_: Any) -> dict[str, Any]:
    """``genlab evaluate`` for a molecule model: ``evaluate_molecule_run`` with each row's
    feature space and the words saying what the real and floor sets are."""
    record = evaluate_molecule_run(run, model, splits, n=int(n), seed=seed, progress=progress)
    if record is None:  # a torchrun process other than rank 0
        return None
    for r in record["rows"]:
        r["feature_space"] = molecule_feature_space(r["metric"])
    describe_sets(record, "molecule")
    _write_record(run, record)  # eval.json again, now with the words above
    return record
