"""Sample-based evaluation of a run (``genlab evaluate``) or of two image sets.

(Moved from ``genlab.metrics.evaluate``, which stays an alias for one release: scoring a
run reads run folders and writes figures, so it sits above ``genlab.metrics``, whose
functions it calls. It does not rewrite the report: ``genlab evaluate`` does that after.)

Every score is computed in a named feature space (a judge network) and reported beside
its *real-versus-real floor*: the same score between the real training and test splits,
with as many training images as there are samples. A model cannot be expected to beat
its floor; how far it is above the floor is what the score says.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any, Sequence

import torch

from ..capabilities import EVALUATORS, tags_of
from ..errors import DataError

ALL = ("fid", "kid", "is", "prdc", "modes", "memorization", "diversity", "nll", "ppl")
DEFAULT = ALL
#: below this many generated images FID and KID are visibly biased (FID falls as the
#: sample grows; published figures use 10,000 or 50,000)
MIN_FID_SAMPLES = 2000

#: what the real and the floor sets of an evaluation are, per kind of data
SETS = {
    "image": {"real_what": "real test images", "floor_what": "real training images"},
    "molecule": {"real_what": "test molecules",
                 "floor_what": "held-out validation molecules, scored against the same references"},
    "toy": {"real_what": "real test points", "floor_what": "the real test points scored the same way"},
}

#: the space each molecule metric is computed in (MOSES / GuacaMol definitions)
MOLECULE_SPACES = {
    "valid": "RDKit parsing",
    "unique": "RDKit canonical SMILES",
    "Novelty": "RDKit canonical SMILES",
    "FCD": "ChemNet activations",
    "SNN": "Morgan fingerprints (Tanimoto)",
    "IntDiv": "Morgan fingerprints (Tanimoto)",
    "IntDiv2": "Morgan fingerprints (Tanimoto)",
    "Frag": "BRICS fragments (RDKit)",
    "Scaf": "Bemis-Murcko scaffolds (RDKit)",
    "Filters": "MOSES structural filters (RDKit)",
    "logP": "RDKit descriptor (Wasserstein-1)",
    "SA": "RDKit descriptor (Wasserstein-1)",
    "QED": "RDKit descriptor (Wasserstein-1)",
    "weight": "RDKit descriptor (Wasserstein-1)",
    "KL": "RDKit descriptors and ECFP4 (GuacaMol KL)",
}


def molecule_feature_space(metric: str) -> str:
    """The space a molecule metric is computed in: ``"FCD/Test"`` -> ChemNet activations,
    ``"logP"`` -> an RDKit descriptor, ``"unique@1000"`` -> canonical SMILES, ..."""
    base = metric.split("/")[0].split("@")[0]
    return MOLECULE_SPACES.get(base, "RDKit")


def describe_sets(record: dict[str, Any], kind: str) -> dict[str, Any]:
    """Add to an evaluation record what its real and floor sets are, for ``kind``
    ``image``, ``molecule`` or ``toy``: ``real_what`` and ``floor_what`` (words), and
    ``compared``, a phrase such as ``"against 200 test molecules (floor: 200 held-out
    validation molecules, ...)"`` that ``genlab evaluate`` prints. Returns ``record``."""
    words = SETS[kind]
    record.update(words)
    n_floor = record.get("n_floor")
    if n_floor:
        floor = f"{n_floor} {words['floor_what']}"
    elif kind == "toy":
        floor = words["floor_what"]
    else:
        floor = "none"
    record["compared"] = f"against {record.get('n_real')} {words['real_what']} (floor: {floor})"
    return record


def small_sample_note(n_fake: int, metrics: Sequence[str]) -> str | None:
    """A warning when FID/KID are scored on fewer than ``MIN_FID_SAMPLES`` images."""
    named = [m.upper() for m in ("fid", "kid") if m in metrics]
    if not named or n_fake >= MIN_FID_SAMPLES:
        return None
    return (f"{' and '.join(named)} on only {n_fake} generated images: both are biased at this size "
            f"(FID falls as the sample grows), so compare only scores of equal sample counts and use at "
            f"least {MIN_FID_SAMPLES:,} images (10,000 for figures to publish)")


def parse_metrics(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"fid,kid"`` -> ``("fid", "kid")``; ``None`` or ``"all"`` -> every metric."""
    if spec is None or spec == "all":
        return DEFAULT
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    alias = {"inception": "is", "inception_score": "is", "pr": "prdc", "precision": "prdc",
             "recall": "prdc", "mode": "modes", "memorisation": "memorization",
             "memorization": "memorization", "likelihood": "nll"}
    out = []
    for n in names:
        n = alias.get(n, n)
        if n not in ALL:
            raise ValueError(f"unknown metric {n!r}; choose from {', '.join(ALL)}")
        if n not in out:
            out.append(n)
    if not out:
        raise ValueError("no metrics given")
    return tuple(out)


def score_row(metric: str, value: Any, floor: Any, space: str, higher: bool | None, **extra: Any) -> dict:
    """One row of an evaluation record: the model's score, its real-vs-real floor (or
    ``None``), the feature space it was computed in and whether higher is better; ``extra``
    adds fields such as ``std``, ``of`` or ``note``."""
    return {"metric": metric, "value": value, "floor": floor, "feature_space": space,
            "higher_is_better": higher, **extra}


@torch.no_grad()
def sample_images(model: Any, n: int, *, seed: int = 0, batch_size: int = 500,
                  progress: bool | None = None, only: Any = None) -> Any:
    """``n`` samples drawn in chunks of ``batch_size``, chunk ``i`` from its own generator
    ``sample_io.chunk_generator(seed, i)`` (chunk 0: ``manual_seed(seed)``), so any subset
    of the chunks can be drawn on its own: with ``only`` (a predicate on the chunk index)
    just those, as ``[(index, images), ...]`` (how the processes of a torchrun share the
    work). A conditional model cycles through its classes. Progress bar if long."""
    from ..progress import Progress
    from ..sample_io import chunk_generator

    out = []
    n_cond = tags_of(model).num_classes
    with Progress(n, "sampling", "image", enabled=progress is not False and n > batch_size) as bar:
        for i, start in enumerate(range(0, n, batch_size)):
            b = min(batch_size, n - start)
            if only is not None and not only(i):
                continue
            kw = {"y": (torch.arange(start, start + b) % n_cond)} if n_cond > 0 else {}
            x = model.sample(b, generator=chunk_generator(seed, i), **kw).float()
            out.append(x if only is None else (i, x))
            bar.update(b)
    return out if only is not None else torch.cat(out)


def compare_sets(real: torch.Tensor, fake: torch.Tensor, *, judge: Any, metrics: Sequence[str] = DEFAULT,
                 train: torch.Tensor | None = None, real_labels: torch.Tensor | None = None,
                 seed: int = 0, kid_subset_size: int = 1000, progress: bool | None = None,
                 fake_features: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Score generated images ``fake`` against real images ``real`` in ``judge``'s space.

    Args:
        real: ``(N, C, H, W)`` real (test) images in [0, 1].
        fake: ``(M, C, H, W)`` generated images in [0, 1].
        judge: a ``genlab.metrics.judges.Judge``.
        metrics: names among fid, kid, is, prdc, modes, memorization, diversity.
        train: real training images: gives the real-vs-real floor (its first ``M`` rows
            against ``real``) and the memorisation reference.
        real_labels: labels of ``real`` for the class histogram (else the judge's argmax).
        seed: seeds KID subsets and the diversity subset.
        fake_features: ``judge.extract(fake)`` when already computed (the processes of a
            torchrun extract their own chunks; the judge's features do not depend on the
            batch, so the result is the same).
    Returns:
        ``{"rows": [...], "feature_space", "n_fake", "n_real", "n_floor", "notes",
        "extra": {...}}``; each row has ``metric, value, floor, feature_space,
        higher_is_better``; ``notes`` warns when there are too few samples for FID/KID.
    """
    from ..metrics import functional as F

    space = judge.feature_space
    f = fake_features if fake_features is not None else judge.extract(fake, progress=progress)
    r = judge.extract(real, progress=progress)
    t = tr_all = None
    if train is not None:
        tr_all = judge.extract(train, progress=progress) if "memorization" in metrics else None
        n_floor = min(len(fake), len(train))
        t = ({k: v[:n_floor] for k, v in tr_all.items()} if tr_all is not None
             else judge.extract(train[:n_floor], progress=progress))
    rows: list[dict] = []
    extra: dict[str, Any] = {}
    kid_size = min(kid_subset_size, len(real), len(fake))

    def floor(fn):
        return None if t is None else fn(t)

    if "fid" in metrics:
        rows.append(score_row("fid", F.fid(r["features"], f["features"]),
                         floor(lambda t: F.fid(r["features"], t["features"])), space, False))
    if "kid" in metrics:
        def kid(a):
            size = min(kid_size, len(a))
            return F.kid(r["features"], a, subsets=100, subset_size=size, seed=seed)
        m, s = kid(f["features"])
        fl = floor(lambda t: kid(t["features"]))
        rows.append(score_row("kid", m, None if fl is None else fl[0], space, False, std=s))
    if "is" in metrics:
        splits = max(1, min(10, len(fake) // 2))
        m, s = F.inception_score(f["probs"], splits=splits)
        rm, _ = F.inception_score(r["probs"], splits=max(1, min(10, len(real) // 2)))
        rows.append(score_row("inception_score", m, rm, space, True, std=s,
                         note="floor column: the real test images' own score"))
    if "prdc" in metrics:
        res = F.prdc(r["features"], f["features"])
        fl = floor(lambda t: F.prdc(r["features"], t["features"]))
        for k in ("precision", "recall", "density", "coverage"):
            rows.append(score_row(k, res[k], None if fl is None else fl[k], space, True))
    if "modes" in metrics:
        ref = real_labels if real_labels is not None else r["probs"]
        res = F.mode_coverage(f["probs"], ref)
        fl = floor(lambda t: F.mode_coverage(t["probs"], ref))
        rows.append(score_row("classes_found", res["classes_found"], None if fl is None else fl["classes_found"],
                         space, True, of=res["num_classes"]))
        rows.append(score_row("class_kl", res["kl"], None if fl is None else fl["kl"], space, False))
        rows.append(score_row("confident_share", res["confident_share"],
                         None if fl is None else fl["confident_share"], space, True))
        real_counts = torch.bincount(torch.as_tensor(ref).long(), minlength=res["num_classes"]) \
            if torch.as_tensor(ref).dim() == 1 else torch.bincount(torch.as_tensor(ref).argmax(1),
                                                                    minlength=res["num_classes"])
        extra["class_counts"] = {"fake": [int(c) for c in res["counts"]],
                                 "real": [int(c) for c in real_counts]}
    if "memorization" in metrics and tr_all is not None:
        res = F.memorization(f["features"], tr_all["features"], r["features"])
        rows.append(score_row("near_copy_share", res["near_copy_share"], res["baseline_share"], space, False,
                         note="floor column: the share of unseen real test images under the same threshold"))
        rows.append(score_row("nn_distance_ratio", res["median_ratio"], 1.0, space, True,
                         note="median distance of samples to their nearest training image over that of test images"))
        extra["closest_pairs"] = res["closest"]
    if "diversity" in metrics:
        rows.append(score_row("diversity", F.diversity(f["features"], seed=seed),
                         floor(lambda t: F.diversity(t["features"], seed=seed)), space, True))
    note = small_sample_note(len(fake), metrics)
    return {"rows": rows, "feature_space": space, "n_fake": len(fake), "n_real": len(real),
            "n_floor": None if t is None else len(t["features"]), "notes": [note] if note else [],
            "extra": extra}


#: samples an evaluator takes when ``n`` is not given and it declares no ``default_n``
DEFAULT_N = 10000


def evaluate_run(run: Any, *, metrics: str | Sequence[str] | None = None, n: int | None = None, seed: int = 0,
                 judge: str | None = None, iwae_k: int | None = None, n_likelihood: int = 1000,
                 progress: bool | None = None, device: str | None = None) -> dict[str, Any]:
    """Sample from a run's model and score it; store the result in the run.

    Writes ``eval.json["evaluation"]`` (rows with floors and feature spaces, figures),
    appends an ``{"split": "eval", ...}`` row to ``metrics.jsonl`` and draws the class
    histogram and the closest (sample, training image) pairs. The report shows all of it
    once rewritten (``genlab.report.write_report(run)``; ``genlab evaluate`` does both).

    Args:
        run: a ``Run`` or a run folder.
        metrics: names or ``"fid,kid,..."``; default all that apply.
        n: number of samples (and at most this many real test images); default the
            evaluator's own (``default_n`` in its registration: 300 captions per guidance
            value for text-to-image), else ``DEFAULT_N`` (10,000).
        seed: seeds sampling, KID subsets and PPL.
        judge: judge name or folder; default the shipped judge of the run's data set.
        iwae_k: importance samples for ``nll`` (default: the model's own default).
        n_likelihood: test images for ``nll``.
        device: where the model samples and the judge extracts features (``cpu``,
            ``auto``, ``cuda``, ...; default: where the model is, the CPU for a loaded run).
    Returns:
        the evaluation record; ``real_what`` / ``floor_what`` / ``compared`` say what
        the real and floor sets are for this kind of data (see ``describe_sets``).
        Under torchrun, ``None`` on every process but rank 0: image runs share the
        sampling and the judge's feature extraction between the processes, molecule runs
        the sampling and featurising (the same samples and scores as one process); the
        mixture-modes evaluator runs on rank 0 alone.

    What is run is the first evaluator in ``genlab.capabilities.EVALUATORS`` that
    applies to the model's tags and the test split: images (judge-space scores with
    floors), molecules (MOSES, in ``evaluation.molecules``), and mode coverage for data
    whose ``meta`` holds mixture ``centers`` (the ring8/grid25 toys); a family adds its
    own by registering it.
    """
    from ..runs import Run

    run = run if isinstance(run, Run) else Run(run)
    names = parse_metrics(metrics)
    if n is not None and int(n) < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    model = run.model()
    if device is not None:
        from ..devices import resolve_device

        dev = resolve_device(device)
        if dev.type != "cpu" and hasattr(model, "to"):
            model.to(dev)
    splits = run.data_splits()
    tags = tags_of(model)
    found = EVALUATORS.applicable(tags, splits["test"])
    if not found:
        what = "; ".join(f"{e.name}: {e.info.get('what', '')}" for e in EVALUATORS.entries())
        raise DataError(f"genlab evaluate has nothing to score for a {tags.modality} model ({what}); "
                        "every run gets its test metrics in eval.json at the end of training")
    from ..train import distributed

    n = found[0].info.get("default_n", DEFAULT_N) if n is None else n
    if distributed.rank_and_world()[0] != 0 and not found[0].info.get("shares_work"):
        return None  # under torchrun: an evaluator that does not share its work runs on rank 0 alone
    # one that shares it (images) returns None on every rank but 0
    return found[0].fn(run, model, splits, metrics=names, n=int(n), seed=seed, judge=judge, iwae_k=iwae_k,
                       n_likelihood=n_likelihood, progress=progress)


@EVALUATORS.register("images", requires={"modality": "image"}, order=30, shares_work=True,
                     what="image models, scored in a judge's feature space against real-vs-real floors")
def evaluate_images(run: Any, model: Any, splits: dict[str, Any], *, metrics: Sequence[str], n: int, seed: int,
                    judge: str | None, iwae_k: int | None, n_likelihood: int,
                    progress: bool | None) -> dict[str, Any]:
    """``genlab evaluate`` for an image model: ``n`` samples scored with ``compare_sets``
    in the judge's space, NLL and bits/dim where the model has a likelihood, PPL where it
    has a latent space; figures of the class histogram and the closest pairs."""
    from ..metrics.judges import judge_for, load_judge
    from ..metrics.ppl import perceptual_path_length
    from .figures import plot_class_histogram, plot_pairs

    names = metrics
    test, train = splits["test"], splits["train"]
    j = load_judge(judge) if judge else judge_for(run.info["data"])
    dev = getattr(model, "device", None)
    if dev is not None and dev.type != "cpu":
        j.to(dev)  # the judge extracts features where the model samples
    real = test.x[:n]
    from ..train import distributed

    rank, world = distributed.rank_and_world()
    fake_features = None
    if world > 1:  # each process samples and extracts its chunks; rank 0 scores them all
        fake, fake_features = _distributed_fakes(model, j, int(n), seed, rank, world, progress)
        if rank != 0:
            return None
    else:
        fake = sample_images(model, int(n), seed=seed, progress=progress)
        _check_finite(fake)
        fake = fake.clamp(0, 1)
    res = compare_sets(real, fake, judge=j, metrics=names, train=train.x,
                       real_labels=test.y[:n] if test.y is not None else None, seed=seed,
                       progress=progress, fake_features=fake_features)
    rows, notes = res["rows"], list(res["notes"])
    if "nll" in names:
        if model.log_prob_kind == "none":
            notes.append(f"nll: {model.model_type} defines no likelihood (log_prob_kind 'none')")
        else:
            from ..metrics import functional as F

            x = test.x[:n_likelihood]
            from ..base import select_log_prob_options

            kw = select_log_prob_options(
                model, k=iwae_k or None, generator=torch.Generator().manual_seed(seed),
                y=test.y[:n_likelihood] if model.tags.conditional else None)
            try:
                from ..progress import task

                with task(f"NLL ({model.log_prob_kind.replace('_', ' ')}) on {len(x):,} test images", len(x)):
                    lp = model.log_prob(x, **kw)
                dim = math.prod(test.shape)
                label = f"{model.log_prob_kind} log p(x), {len(x)} test images"
                rows.append(score_row("nll_nats", F.nll_nats(lp), None, "data", False, note=label))
                rows.append(score_row("bits_per_dim", F.bits_per_dim(lp, dim), None, "data", False, note=label))
            except ValueError as e:
                notes.append(f"nll: {e}")
    if "ppl" in names:
        if model.tags.latent:
            p = perceptual_path_length(model, j.features, n=min(int(n), 2000),
                                       generator=torch.Generator().manual_seed(seed),
                                       feature_space=j.feature_space)
            rows.append(score_row("ppl", p["ppl"], None, j.feature_space, False, note=f"{p['n']} latent pairs, "
                             f"eps {p['eps']}, {p['interpolation']}"))
        else:
            notes.append(f"ppl: {model.model_type} has no latent space")
    figures = {}
    counts = res["extra"].get("class_counts")
    if counts:
        plot_class_histogram(counts["fake"], counts["real"], run.figure("eval_classes.png"),
                             classes=test.classes)
        figures["eval_classes.png"] = "Share of samples per class as the judge sees them, beside the real test data."
    pairs = res["extra"].get("closest_pairs")
    if pairs:
        fi = [p[0] for p in pairs]
        ti = [p[1] for p in pairs]
        plot_pairs(fake[fi], train.x[ti], run.figure("eval_closest_pairs.png"))
        figures["eval_closest_pairs.png"] = ("Memorisation check: the generated samples closest to a training "
                                             "image (top) and that training image (bottom).")
    record = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "n_fake": res["n_fake"], "n_real": res["n_real"], "n_floor": res["n_floor"], "seed": seed,
              "judge": j.feature_space, "metrics": list(names), "rows": rows, "notes": notes,
              "figures": figures, "closest_pairs": pairs or []}
    describe_sets(record, "image")
    store_record(run, record)
    return record


def _check_finite(fake: torch.Tensor) -> None:
    if not torch.isfinite(fake).all():
        raise DataError("the model produced non-finite samples; it cannot be scored")


def _distributed_fakes(model: Any, judge: Any, n: int, seed: int, rank: int, world: int,
                       progress: bool | None) -> tuple[Any, Any]:
    """Under torchrun: process ``r`` draws the sample chunks ``i % world == r`` and extracts
    their judge features; the chunks are gathered in order (a "cat" reduction). Returns the
    images and features on rank 0, ``(None, None)`` elsewhere. The same samples and
    features as one process (per-chunk seeds; the judge's features do not depend on the
    batch)."""
    import torch.distributed as dist

    from ..train import distributed

    distributed.setup()
    mine = []
    for i, x in sample_images(model, n, seed=seed, progress=progress if rank == 0 else False,
                              only=lambda i: i % world == rank):
        _check_finite(x)
        x = x.clamp(0, 1)
        mine.append((i, x, judge.extract(x, progress=False)))
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, mine)
    if rank != 0:
        return None, None
    chunks = sorted((c for p in parts for c in p), key=lambda c: c[0])
    fake = torch.cat([c[1] for c in chunks])
    feats = {k: torch.cat([c[2][k] for c in chunks]) for k in chunks[0][2]}
    return fake, feats


def _write_record(run: Any, record: dict[str, Any]) -> None:
    """Put ``record`` into ``eval.json["evaluation"]``, keeping the rest of the file."""
    from ..base import atomic_write_json

    ev = dict(run.eval)
    ev["evaluation"] = record
    atomic_write_json(run.path / "eval.json", ev)


def store_record(run: Any, record: dict[str, Any]) -> None:
    """Store an evaluation record in a run: ``eval.json["evaluation"]`` and an ``eval``
    row (the scores by metric name) appended to ``metrics.jsonl``."""
    _write_record(run, record)
    step = max((r.get("step", 0) for r in run.metrics()), default=0)
    with open(run.path / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"split": "eval", "step": step, "n": record["n_fake"],
                             "feature_space": record["judge"],
                             **{r["metric"]: r["value"] for r in record["rows"]}}) + "\n")


def _mixture_data(test: Any) -> bool:
    meta = getattr(test, "meta", None) or {}
    return "centers" in meta and "std" in meta


@EVALUATORS.register("modes", requires={"modality": "table"}, accepts=_mixture_data, order=10,
                     what="2-D Gaussian mixtures whose data meta holds the centres (ring8, grid25)")
def evaluate_mixture(run: Any, model: Any, splits: dict[str, Any], *, n: int, seed: int,
                     **_: Any) -> dict[str, Any]:
    """The VEEGAN / PacGAN protocol on the 2-D mixtures: modes covered and the share of
    high-quality samples (within 3 std of a centre), for 2,500 samples unless ``n`` is
    smaller; the floor column scores real test points the same way. The centres and std
    come from the test split's ``meta``."""
    from ..metrics import functional as F

    test = splits["test"]
    name = str(test.meta.get("dataset") or run.info.get("data", "mixture"))
    centers, std = torch.tensor(test.meta["centers"], dtype=torch.float32), float(test.meta["std"])
    n = min(int(n), 2500)
    x = model.sample(n, generator=torch.Generator().manual_seed(seed))
    res = F.toy_mode_metrics(x, centers, std=std)
    real = F.toy_mode_metrics(test.x[:n], centers, std=std)
    space = f"{name} centres"
    rows = [score_row("modes_covered", res["modes_covered"], real["modes_covered"], space, True, of=res["num_modes"]),
            score_row("high_quality_share", res["high_quality_share"], real["high_quality_share"], space, True)]
    record = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "n_fake": n,
              "n_real": min(n, len(test)), "n_floor": None, "seed": seed, "judge": space,
              "metrics": ["modes"], "rows": rows, "notes": [], "figures": {}, "closest_pairs": [],
              "counts": res["counts"]}
    describe_sets(record, "toy")
    store_record(run, record)
    return record


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of evaluation rows for the terminal."""
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    lines = [f"{'metric':<18} {'model':>10} {'real-vs-real':>13}  feature space"]
    for r in rows:
        lines.append(f"{r['metric']:<18} {fmt(r['value']):>10} {fmt(r.get('floor')):>13}  {r['feature_space']}")
    return "\n".join(lines)
