"""The package layers (ARCHITECTURE.md, "Layers"; the contract is in pyproject.toml): a
plain pytest run fails when an import breaks them, and the old import paths of moved code
still give the same objects (aliases kept for one release)."""
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import genlab

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> subprocess.CompletedProcess:
    src = str(Path(genlab.__file__).resolve().parents[1])  # the genlab under test, not another install
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", "--config", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_layers_hold():
    res = _lint_imports()
    assert res.returncode == 0, f"lint-imports found imports that break the layers:\n{res.stdout}\n{res.stderr}"
    assert "1 kept, 0 broken" in res.stdout


@pytest.mark.parametrize("old, new, name", [
    ("genlab.models.sequence.tokenizers", "genlab.data.tokenizers", "CharTokenizer"),
    ("genlab.models.sequence.tokenizers", "genlab.data.tokenizers", "from_config"),
    ("genlab.pipelines.music_tokens", "genlab.data.music", "VOCAB"),
    ("genlab.pipelines.music_io", "genlab.data.music_io", "write_midi"),
    ("genlab.pipelines.music_metrics", "genlab.metrics.music", "music_metrics"),
    ("genlab.pipelines.music", "genlab.data.music", "folk_splits"),
    ("genlab.pipelines.music", "genlab.data.music_io", "write_samples"),
    ("genlab.metrics.evaluate", "genlab.evaluation.evaluate", "compare_sets"),
    ("genlab.metrics.evaluate", "genlab.evaluation.evaluate", "parse_metrics"),
    ("genlab.metrics.judges", "genlab.evaluation.judges", "train_judge"),
    ("genlab.metrics.judges", "genlab.evaluation.judges", "SHIPPED_RECIPES"),
    ("genlab.pipelines.molecules", "genlab.evaluation.molecules", "evaluate_molecule_run"),
    ("genlab.runs", "genlab.workflow", "train_run"),
    ("genlab.runs", "genlab.evaluation.split_metrics", "evaluate_model"),
    ("genlab.report.figures", "genlab.imaging", "save_grid"),
    ("genlab.report", "genlab.imaging", "image_grid"),
    ("genlab.report.figures", "genlab.evaluation.figures", "plot_pairs"),
    ("genlab.pipelines.super_resolution", "genlab.metrics.functional", "ssim"),
])
def test_old_import_paths_give_the_moved_objects(old, new, name):
    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)


@pytest.mark.parametrize("module", ["genlab.runs", "genlab.metrics.judges", "genlab.pipelines.molecules"])
def test_alias_hooks_refuse_other_names(module):
    with pytest.raises(AttributeError, match="no_such_name"):
        importlib.import_module(module).no_such_name  # noqa: B018 — the lookup is the test
