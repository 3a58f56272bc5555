"""Evaluation: scoring models and runs with the metrics of ``genlab.metrics``.

``genlab.metrics`` is pure math and metric classes; this package is the orchestration
around them, which reads run folders and writes scores and figures into them:

* ``evaluate`` — ``evaluate_run`` (what ``genlab evaluate RUN`` does: samples scored
  against the real test split beside their real-vs-real floor, in a named feature space)
  and ``compare_sets`` (two image sets, no model);
* ``molecules`` — the same for a molecule run (MOSES metrics, a molecule grid);
* ``split_metrics`` — the test-split metrics every finished run records
  (``evaluate_model``), computed by ``genlab.workflow.train_run``;
* ``judges`` — training a judge (a feature space) on labelled images (``train_judge``);
  the shipped judges themselves stay with the metrics (``genlab.metrics.judges``);
* ``figures`` — the evaluation figures (class histogram, closest pairs).

Nothing here writes the report; ``genlab.report.write_report(run)`` shows what was stored.
"""
from .evaluate import (
    compare_sets, describe_sets, evaluate_run, format_rows, parse_metrics, score_row, store_record,
)
from .split_metrics import evaluate_model

__all__ = ["evaluate_run", "compare_sets", "parse_metrics", "format_rows", "describe_sets", "score_row",
           "store_record", "evaluate_model"]
