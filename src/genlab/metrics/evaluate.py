"""Alias for one release: run evaluation moved to ``genlab.evaluation.evaluate`` (scoring a
run reads run folders and writes into them, which the pure metrics layer does not do).

``evaluate_run`` here keeps its old behaviour of rewriting the run's report afterwards
(``report=True``); ``genlab.evaluation.evaluate_run`` leaves that to the caller.
"""
from __future__ import annotations

from typing import Any

from ..evaluation.evaluate import (  # noqa: F401
    ALL, DEFAULT, MIN_FID_SAMPLES, MOLECULE_SPACES, SETS, compare_sets, describe_sets, format_rows,
    molecule_feature_space, parse_metrics, sample_images, score_row, small_sample_note, store_record,
)
from ..evaluation.evaluate import evaluate_run as _evaluate_run


def evaluate_run(run: Any, *, report: bool = True, **kwargs: Any) -> dict[str, Any]:
    """``genlab.evaluation.evaluate_run(run, **kwargs)``, then (``report``) the run's report
    rewritten, as this function did before it moved."""
    from ..report import write_report
    from ..runs import Run

    run = run if isinstance(run, Run) else Run(run)
    record = _evaluate_run(run, **kwargs)
    if report:
        write_report(run)
    return record
