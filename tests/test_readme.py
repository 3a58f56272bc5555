"""Every ```python block of README.md runs as written, warning-free (issue 14, point 5).

How a block is run
    Each block is written to ``snippet.py`` in a fresh temporary folder and run there with
    ``python snippet.py`` in its own process, as a reader would paste it. The environment
    has no ``OMP_WAIT_POLICY``: genlab sets it itself when it is imported before torch, and
    warns when torch came first, which is one of the mistakes this test catches. The block
    passes when it exits 0 and its stderr holds no warning (Python's
    ``file:line: SomeWarning: message`` lines, genlab's ``genlab: warning:`` lines, or a
    logged ``WARNING``); progress bars on stderr are fine. ``bash`` blocks are not run here.

Budgets: the ``<!-- test ... -->`` marker
    An HTML comment starting with ``<!-- test`` directly above a block (invisible on
    GitHub) shrinks what the block costs. Each line after the first is a directive:

    * ``old => new`` replaces the text ``old`` of the block by ``new`` (e.g.
      ``TrainConfig(epochs=50 => TrainConfig(epochs=1``). Every ``old`` must occur in the
      block, so a marker that no longer matches its block fails the test instead of
      silently running the full budget;
    * ``slow`` marks the block ``pytest.mark.slow`` (excluded by default, ``-m slow``);
      only for blocks whose cost cannot be shrunk (the MOSES metrics block, whose first
      use canonicalises MOSES's 1.58M training molecules).

    Text after ``<!-- test`` on its first line is a free comment.

Fixtures: the reader's files
    Blocks that name a reader's files find small stand-ins in their folder, created only
    when the block mentions them:

    * ``photos/``: twelve 48x40 RGB PNGs (noise);
    * ``patients.csv``: 40 rows of ``age,weight,blood_pressure,outcome`` with missing ages
      and one outlier weight;
    * ``samples.txt`` (what ``genlab sample runs/smiles-lstm -o samples.txt`` writes) and
      ``my_molecules.smi``: 10,000 MOSES test / 1,000 scaffold-test molecules, one SMILES
      per line;
    * ``runs/smiles-lstm`` and ``runs/smiles-vae``: the runs the README's ``genlab train
      lstm|seqvae --data moses`` commands make, stood in by a small LSTM and SeqVAE fitted
      here on 300 MOSES molecules (``run.json`` + ``model/``).

    Blocks that need data genlab does not ship are skipped when it is missing: Fashion-MNIST
    (``apt-get install dataset-fashion-mnist``) and, for the molecule blocks, RDKit and the
    MOSES data (``pip install "genlab[chem]"``, molsets).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TIMEOUT_S = 300

_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_WARNING = re.compile(r"^.*:\d+: [A-Za-z_.]*Warning: .*$|^WARNING\b.*$|^genlab: warning: .*$", re.M)


@dataclass
class Snippet:
    line: int  # 1-based line of the opening fence in README.md
    code: str
    replace: list[tuple[str, str]] = field(default_factory=list)
    slow: bool = False

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"

    def budgeted(self) -> str:
        code = self.code
        for old, new in self.replace:
            assert old in code, (f"{self.name}: the test marker replaces {old!r}, which the block "
                                 "no longer contains; update the <!-- test --> marker above it")
            code = code.replace(old, new)
        return code


def parse_marker(text: str) -> tuple[list[tuple[str, str]], bool]:
    """The directives of a ``<!-- test ... -->`` comment's body (see the module docstring)."""
    replace, slow = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "slow":
            slow = True
        elif " => " in line:
            old, new = line.split(" => ", 1)
            replace.append((old, new))
        else:
            raise ValueError(f"unknown README test directive {line!r} (expected 'slow' or 'old => new')")
    return replace, slow


def _marker_above(before: str) -> str:
    """The body of the ``<!-- test`` comment that ends right where ``before`` ends, or ''."""
    head = before.rstrip()
    start = head.rfind("<!--")
    if not head.endswith("-->") or start < 0:
        return ""
    comment = head[start + 4:-3]
    first, _, body = comment.partition("\n")
    return body if re.match(r"\s*test\b", first) else ""


def readme_snippets(text: str) -> list[Snippet]:
    """Every ```python block of ``text`` with the marker directly above it, if any."""
    out = []
    for m in _BLOCK.finditer(text):
        before = text[:m.start()]
        replace, slow = parse_marker(_marker_above(before))
        out.append(Snippet(line=before.count("\n") + 1, code=m.group(1), replace=replace, slow=slow))
    return out


SNIPPETS = readme_snippets(README.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- the parser
def test_the_parser_finds_blocks_markers_and_stale_markers():
    text = ("intro\n\n```python\nprint(1)\n```\n\n<!-- test (a note)\nslow\nepochs=50 => epochs=1\n-->\n"
            "```python\nfit(epochs=50)\n```\n\n```bash\nls\n```\n<!-- test\nx => y\n-->\nprose\n"
            "```python\nx = 1\n```\n")
    a, b, c = readme_snippets(text)
    assert (a.line, a.code, a.replace, a.slow) == (3, "print(1)\n", [], False)
    assert (b.line, b.slow, b.budgeted()) == (11, True, "fit(epochs=1)\n")
    assert c.replace == []  # a marker only counts directly above its block
    with pytest.raises(AssertionError, match="no longer contains"):
        Snippet(1, "fit()\n", [("epochs=50", "epochs=1")]).budgeted()
    with pytest.raises(ValueError, match="unknown README test directive"):
        parse_marker("epochs=1\n")


def test_the_readme_has_python_blocks():
    assert len(SNIPPETS) >= 5, "README.md should keep its Python examples"


# ----------------------------------------------------------------------------- fixtures
def _has_fashion_mnist() -> bool:
    from genlab.data.datasets import _fashion_root
    from genlab.errors import DataError

    try:
        _fashion_root(None)
    except (DataError, FileNotFoundError, OSError):
        return False
    return True


def _moses_or_skip() -> None:
    pytest.importorskip("rdkit")
    from genlab.data.molecules import moses_file
    from genlab.errors import DataError

    try:
        moses_file("train")
    except DataError as err:
        pytest.skip(f"the MOSES data is not installed: {err}")


def _photos(root: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "photos").mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(root / "photos" / f"img{i}.png")


def _patients(root: Path) -> None:
    rows = ["age,weight,blood_pressure,outcome"]
    for i in range(40):
        age = "" if i % 9 == 0 else str(30 + i)
        weight = "900" if i == 5 else str(60 + (i * 7) % 30)
        rows.append(f"{age},{weight},{110 + (i * 3) % 40},{i % 2}")
    (root / "patients.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="session")
def molecule_files(tmp_path_factory) -> Path:
    """``samples.txt``, ``my_molecules.smi`` and ``runs/smiles-{lstm,vae}``, built once."""
    _moses_or_skip()
    from genlab.data import load_splits
    from genlab.metrics._mol_reference import moses_smiles
    from genlab.models import LSTM, SeqVAE

    root = tmp_path_factory.mktemp("molecules")
    (root / "samples.txt").write_text("\n".join(moses_smiles("test")[:10_000]) + "\n")
    (root / "my_molecules.smi").write_text("\n".join(moses_smiles("test_scaffolds")[:1000]) + "\n")
    splits = load_splits("moses", n_train=300, n_eval=50)
    train = {"epochs": 1, "batch_size": 64, "progress": False, "threads": 1, "val_fraction": 0, "seed": 0}
    for name, model in (("smiles-lstm", LSTM(hidden=32, layers=1)),
                        ("smiles-vae", SeqVAE(latent_dim=8, dec_hidden=32))):
        run = root / "runs" / name
        model.fit(splits["train"], train).save(run / "model")
        family = "lstm" if name == "smiles-lstm" else "seqvae"
        (run / "run.json").write_text(json.dumps({"family": family, "data": "moses", "status": "finished"}))
    return root


def _prepare(code: str, folder: Path, request) -> None:
    if "fashion-mnist" in code and not _has_fashion_mnist():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    if "photos/" in code:
        _photos(folder)
    if "patients.csv" in code:
        _patients(folder)
    wanted = [n for n in ("samples.txt", "my_molecules.smi", "runs/smiles-lstm", "runs/smiles-vae") if n in code]
    if wanted or "molecules" in code or "moses" in code:
        _moses_or_skip()
    if wanted:
        src = request.getfixturevalue("molecule_files")
        for name in wanted:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if (src / name).is_dir() else shutil.copy)(src / name, folder / name)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY" and not k.startswith("PYTEST")}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.pop("PYTHONWARNINGS", None)
    return env


# ----------------------------------------------------------------------------- the blocks
@pytest.mark.parametrize("snippet", [pytest.param(s, id=s.name, marks=[pytest.mark.slow] if s.slow else [])
                                     for s in SNIPPETS])
def test_readme_python_block_runs_warning_free(snippet: Snippet, tmp_path, request):
    code = snippet.budgeted()
    _prepare(code, tmp_path, request)
    (tmp_path / "snippet.py").write_text(code)
    proc = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    shown = f"--- {snippet.name} as run:\n{code}\n--- stderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, f"the block failed (exit {proc.returncode})\n{shown}"
    warnings_seen = _WARNING.findall(proc.stderr)
    assert not warnings_seen, f"the block warned: {warnings_seen}\n{shown}"
