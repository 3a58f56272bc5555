"""One call for a whole training run: train into a run folder, score the test split, write
the report — what ``genlab train`` and ``genlab quickstart`` do.

The pieces live in their layers and know nothing of each other: ``genlab.runs.fit_run``
trains and saves, ``genlab.evaluation.split_metrics`` computes the test metrics, and
``genlab.report.write_report`` draws the report. This module sits above all three and
composes them (``genlab.runs.train_run`` is an alias of ``train_run`` for one release).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import TrainingDivergedError
from .evaluation.split_metrics import evaluate_model, write_test_metrics
from .outputs import RUN_FILE
from .progress import Phases
from .report import write_report
from .runs import Run, fit_run
from .train import TrainConfig, distributed


def train_run(model: str | Any, data: Any, *, out: str | Path, train: TrainConfig | dict | None = None,
              model_config: dict[str, Any] | None = None, data_options: dict[str, Any] | None = None,
              resume: bool = False, overwrite: bool = False, report: bool = True,
              command: list[str] | None = None, origin: str | None = None, verbose: bool = False) -> Run:
    """Train a model into a run folder (or resume one), evaluate it on the test split and
    write its report.

    Training, resuming and the run folder's rules are ``genlab.runs.fit_run``'s (its
    arguments are the same, see there); after the model is saved this writes the test
    metrics to ``eval.json`` (``genlab.evaluation.split_metrics.evaluate_model``: a failure
    there marks the run failed, like any other) and then, with ``report``, ``report.html``.
    A run that diverged or was interrupted also gets its report (the curves up to the
    failure are worth a look) before the error is raised again.

    Returns:
        the finished ``Run`` (``run.note`` says why a resume had nothing to do);
        ``run.info["phases_s"]`` holds the wall time of this call by phase, the report
        included.
    """
    phases = Phases()
    out = Path(out)

    def test_metrics(run: Run, model: Any, splits: dict[str, Any], *, phases: Phases, say: Any) -> None:
        test = splits.get("test")
        with phases("test metrics", say=say(f"test metrics on {min(len(test), 2000):,} test examples")
                    if test is not None else None):
            scores = evaluate_model(model, test) if test is not None else {}
        write_test_metrics(run.path, scores, resumed_at=run.info.get("resumed"))

    try:
        run = fit_run(model, data, out=out, train=train, model_config=model_config, data_options=data_options,
                      resume=resume, overwrite=overwrite, command=command, origin=origin, verbose=verbose,
                      phases=phases, finish=test_metrics)
    except (TrainingDivergedError, KeyboardInterrupt):
        if report and distributed.is_main():
            _report_failed_run(out)
        raise
    if run.note is not None or not report or not distributed.is_main():
        return run  # nothing was trained, no report asked for, or not the rank that writes
    with phases("report", say="writing the report" if verbose else None):
        write_report(run)
    run.update(phases_s=phases.record(), command_wall_s=round(phases.total(), 2))
    return run


def _report_failed_run(out: Path) -> None:
    """The report of a run that diverged or was interrupted, as far as it can be written:
    a report is a courtesy, the recorded status is what matters."""
    try:
        if not (out / RUN_FILE).is_file():
            return
        run = Run(out)
        if run.info.get("status") in ("diverged", "interrupted"):
            write_report(run)
    except Exception:  # noqa: BLE001 — never hide the training error behind a report error
        pass
