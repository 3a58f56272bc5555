"""Runs: a training run is a folder that holds everything about it.

::

    runs/<name>/
      run.json              model type and config, data, train config, status, timings
      model/                the trained model (config.json + model.safetensors)
      checkpoints/last.pt   resumable training state (written atomically)
      metrics.jsonl         one JSON row per logged step / validation / event
      eval.json             test-split metrics
      figures/*.png         samples, reconstructions, curves, interpolations
      report.html           a self-contained report of all of the above

``fit_run`` trains a model into one (or resumes it); ``Run`` reads one. The whole
command — training, the test metrics, the report — is ``genlab.workflow.train_run``, a
layer above: runs know nothing of evaluation or reports (``genlab.runs.train_run`` and
``evaluate_model`` stay importable from here for one release). The CLI works on runs.
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .base import atomic_write_json, load as load_model
from .errors import DataError, GenlabError, TrainingDivergedError
from .devices import resolve_device
from .outputs import RUN_FILE  # the run layout lives in outputs.py
from .registry import MODELS
from .train import TrainConfig



class Run:
    """A run folder. ``Run(path).model()`` loads its model, ``.metrics()`` its log."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.note: str | None = None  # e.g. why a resume had nothing to do
        if not (self.path / RUN_FILE).is_file():
            if not self.path.exists():
                raise FileNotFoundError(f"no run at {self.path}: the folder does not exist")
            raise GenlabError(f"{self.path} is not a genlab run folder (it has no {RUN_FILE})")
        try:
            self.info: dict[str, Any] = json.loads((self.path / RUN_FILE).read_text())
        except json.JSONDecodeError as e:
            raise GenlabError(f"{self.path / RUN_FILE} is damaged: {e}") from None

    @property
    def name(self) -> str:
        return self.path.name

    def model(self) -> Any:
        if not (self.path / "model" / "config.json").is_file():
            raise GenlabError(f"run {self.path} has no trained model yet (status: "
                              f"{self.info.get('status')}); finish it with --resume")
        return load_model(self.path / "model")

    def metrics(self) -> list[dict[str, Any]]:
        p = self.path / "metrics.jsonl"
        if not p.is_file():
            return []
        return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]

    @property
    def eval(self) -> dict[str, Any]:
        p = self.path / "eval.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def data_splits(self, **options: Any) -> dict[str, Any]:
        """The run's data splits, loaded again from its recorded source."""
        from .data.datasets import load_splits
        from .registry import MODELS

        cls = MODELS.get(self.info["model_type"]) if self.info.get("model_type") else None
        loader = getattr(cls, "load_splits", None) or load_splits
        return loader(self.info["data"], **{**self.info.get("data_options", {}), **options})

    def update(self, **fields: Any) -> None:
        self.info.update(fields)
        atomic_write_json(self.path / RUN_FILE, self.info)

    def figure(self, name: str) -> Path:
        (self.path / "figures").mkdir(exist_ok=True)
        return self.path / "figures" / name


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def fit_run(model: str | Any, data: Any, *, out: str | Path, train: TrainConfig | dict | None = None,
            model_config: dict[str, Any] | None = None, data_options: dict[str, Any] | None = None,
            resume: bool = False, overwrite: bool = False, command: list[str] | None = None,
            origin: str | None = None, verbose: bool = False, phases: Any = None,
            finish: Callable[..., None] | None = None) -> Run:
    """Train a model into a run folder (or resume one) and save it there.

    ``genlab.workflow.train_run`` is this plus the test metrics and the report, and is what
    most callers want.

    A new run goes into a new or empty folder; a folder holding a run is continued with
    ``resume=True`` or replaced with ``overwrite=True`` (only the files of genlab's run
    layout are removed, see ``genlab.outputs``). Whatever ends the command — a finished
    run, a divergence, Ctrl-C, a full disk, any error — ``run.json`` records it: its
    status is never left at ``running``.

    Args:
        model: a registered model name (``"vae"``) or an unfitted model instance.
        data: a dataset name or a path (recorded in ``run.json`` so the run can be redone).
            On resume: ``None``, or the recorded source (anything else is refused).
        out: the run folder.
        train: a ``TrainConfig`` or dict. On resume, a dict of the settings to change
            (``epochs``, ``lr``, ... see ``genlab.train.trainer.RESUMABLE_FIELDS``); the
            changes are recorded in ``run.json``'s ``history``.
        model_config: config overrides when ``model`` is a name; on resume only the
            family's ``resumable_config_fields`` (a GAN's ``lr_g``/``lr_d``).
        data_options: options for the dataset loader (e.g. ``{"binarize": True}``).
        resume: continue the run in ``out`` from its last checkpoint.
        overwrite: replace the run already in ``out``.
        phases: a ``genlab.progress.Phases`` to time the phases in (a caller that does more
            work after this passes its own); default a new one.
        finish: ``finish(run, model, splits, phases=..., say=...)`` runs after the model is
            saved and before the run is marked finished, under the same failure recording
            (``genlab.workflow.train_run`` computes the test metrics there).
        origin: the command that made the run (``"quickstart"`` may replace its own runs).
        verbose: say each phase as it starts (the CLI does); progress shows regardless.
    Returns:
        the finished ``Run``. Resuming a finished run that the settings would not extend
        changes nothing: the returned run's ``note`` says so and what would continue it.
        ``run.info["phases_s"]`` holds the wall time of this call by phase.
    """
    from .progress import Phases

    phases = Phases() if phases is None else phases
    say = (lambda text: text) if verbose else (lambda text: None)
    from .data.datasets import load_splits
    from .outputs import clean_run_temporaries, layout_record, prepare_run_folder
    from .train import distributed
    from .train.trainer import resume_changes

    out = Path(out)
    data_options = dict(data_options or {})
    changes: dict[str, list[Any]] = {}
    if resume:
        run = Run(out)
        info = run.info
        cls = MODELS.get(info["model_type"])
        fixed = sorted(set(model_config or {}) - set(cls.resumable_config_fields))
        if fixed:
            raise ValueError(f"cannot resume {out} with other model settings ({', '.join(fixed)}): "
                             "the model's shape is fixed once trained; start a new run to change it")
        if data is not None and str(data) != str(info["data"]):
            raise ValueError(f"cannot resume {out} on --data {data}: it was trained on {info['data']}; "
                             "start a new run for other data")
        if data_options and data_options != info.get("data_options", {}):
            raise ValueError(f"cannot resume {out} with other data options ({data_options}); it was "
                             f"trained with {info.get('data_options', {})}")
        model_cfg = cls.config_class.from_dict(info["model_config"])
        model_changes = {k: [getattr(model_cfg, k), v] for k, v in (model_config or {}).items()
                         if getattr(model_cfg, k) != v}
        model = cls(model_cfg.replace(**model_config) if model_config else model_cfg)
        recorded = TrainConfig.from_dict(info["train_config"])
        over = train.to_dict() if isinstance(train, TrainConfig) else dict(train or {})
        train_cfg = recorded.replace(**over) if over else recorded
        changes = {**resume_changes(recorded.to_dict(), train_cfg.to_dict(), what=str(out)), **model_changes}
        data, data_options = info["data"], info.get("data_options", {})
        if info.get("status") == "finished":
            note = _nothing_to_resume(out, model, info, train_cfg, changes)
            if note is not None:  # nothing would be trained: keep everything as it is
                run.note = note
                return run
    else:
        train_cfg = TrainConfig.coerce(train)
        if distributed.is_main():
            prepare_run_folder(out, overwrite=overwrite, replace_origin=origin)
        if isinstance(model, str):
            cls = MODELS.get(model)
            model = cls(cls.config_class(**(model_config or {})))
        if not isinstance(data, (str, Path)):
            raise TypeError("train_run records its data source: pass a dataset name or a path")

    # a family whose data is not images/tables/sequences (e.g. categorical tables for
    # Bayesian networks) brings its own loader
    with phases("load data", say=say(f"loading {data}")):
        splits = (getattr(type(model), "load_splits", None) or load_splits)(str(data), **data_options)
    main = distributed.is_main()  # under torchrun only rank 0 writes the run folder
    if not resume:
        model.prepare(splits["train"])  # resolve data-dependent config before recording it
    if not resume and main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / RUN_FILE, {
            "name": out.name, "model_type": model.model_type, "log_prob_kind": model.log_prob_kind,
            "data": str(data),
            "data_options": data_options, "data_shape": list(splits["train"].shape),
            "n_train": len(splits["train"]), "genlab_version": __version__,
            "created": _now(), "status": "running", "command": command, "origin": origin,
            "world_size": distributed.rank_and_world()[1],  # processes under torchrun
            "model_config": model.config.to_dict(), "train_config": train_cfg.to_dict(),
            "layout": layout_record(), "history": [],
        })
    if not main:
        distributed.setup(resolve_device(train_cfg.device))  # the backend follows the device
        distributed.barrier()  # wait for rank 0 to create the run folder
        model.fit(splits["train"], train_cfg, val=splits.get("val"), run_dir=out, resume=resume)
        return Run(out)
    if not resume:
        run = Run(out)
    else:
        clean_run_temporaries(out)  # left by a kill during an atomic write
        history = list(run.info.get("history") or [])
        world = distributed.rank_and_world()[1]
        history.append({"resumed": _now(), "command": command, "changed": changes, "world_size": world})
        run.update(history=history, train_config=train_cfg.to_dict(), model_config=model.config.to_dict(),
                   world_size=world)
    run.update(status="running", resumed=_now() if resume else None, finished=None, error=None)
    if distributed.rank_and_world()[1] > 1:
        distributed.setup(resolve_device(train_cfg.device))  # the backend follows the device
        distributed.barrier()
    t0 = time.time()
    try:
        with phases("train", say=say(f"training {model.model_type} on {len(splits['train']):,} examples "
                                     f"({train_cfg.epochs} epochs, batch {train_cfg.batch_size})")):
            model.fit(splits["train"], train_cfg, val=splits.get("val"), run_dir=out, resume=resume)
            model.save(out / "model")
        wall = time.time() - t0 + (run.info.get("wall_time_s") or 0.0 if resume else 0.0)
        if finish is not None:
            finish(run, model, splits, phases=phases, say=say)
        run.update(status="finished", finished=_now(), wall_time_s=round(wall, 2))
    except BaseException as e:
        record_failure(run, e)
        raise
    run.update(phases_s=phases.record(), command_wall_s=round(phases.total(), 2))
    return run


def _nothing_to_resume(out: Path, model: Any, info: dict[str, Any], cfg: TrainConfig,
                       changes: dict[str, Any]) -> str | None:
    """Why resuming the finished run ``out`` with ``cfg`` would train nothing (a sentence
    saying what would continue it), or ``None`` when it would train more."""
    from .train.checkpoint import read_checkpoint
    from .train.trainer import CHECKPOINT_DIR

    ck = out / CHECKPOINT_DIR / "last.pt"
    if model.tags.trained_by == "estimator" or not ck.is_file():  # closed-form fits (Bayesian networks, MRFs)
        return f"{out} is finished ({info['model_type']} is fitted in one pass): nothing to resume"
    state = read_checkpoint(ck)
    done = int(state.get("step", 0))
    if state.get("stopped_early"):
        return (f"{out} is finished: early stopping ended it at step {done} (best at step "
                f"{state.get('best_step')}); nothing to resume")
    planned = model.planned_steps
    total = planned(int(info["n_train"]), cfg)
    if total > done:
        return None
    spe = max(1, planned(int(info["n_train"]), cfg.replace(epochs=1, max_steps=None)))
    more = done // spe + 1
    how = f"--epochs {more}" + (f" and a --max-steps above {done}" if cfg.max_steps is not None else "")
    plural = lambda k, word: f"{k} {word}" + ("" if k == 1 else "s")  # noqa: E731
    return (f"{out} is finished ({plural(done, 'step')}, {plural(cfg.epochs, 'epoch')}): nothing to "
            f"train; pass {how} or more to continue it")


def record_failure(run: Run, e: BaseException) -> str:
    """Mark the run diverged / interrupted / failed with the reason, as far as the disk
    still lets us (a full disk must not hide the original error). Returns the status."""
    from .outputs import describe_os_error

    if isinstance(e, TrainingDivergedError):
        status = "diverged"
    elif isinstance(e, KeyboardInterrupt):
        status = "interrupted"
    else:
        status = "failed"
    reason = describe_os_error(e) if isinstance(e, OSError) else (str(e) or type(e).__name__)
    try:
        run.update(status=status, error=reason, finished=_now())
    except Exception:  # noqa: BLE001 — the disk may be what failed
        pass
    return status


def check_data_source(data: Any) -> None:
    if data is None or (isinstance(data, str) and not data.strip()):
        raise DataError("no data given: pass a dataset name (genlab list) or a path")


def __getattr__(name: str) -> Any:
    """Aliases for one release: ``train_run`` (training, test metrics and the report) is
    ``genlab.workflow.train_run``; ``evaluate_model`` is in ``genlab.evaluation``."""
    if name == "train_run":
        from .workflow import train_run

        return train_run
    if name == "evaluate_model":
        from .evaluation.split_metrics import evaluate_model

        return evaluate_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
