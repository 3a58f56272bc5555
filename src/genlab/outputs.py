"""Where genlab writes, and the promise it keeps there: it never deletes or overwrites a
file it did not write.

* A new run goes into a new or empty folder. A folder that already holds a run is
  continued with ``--resume`` or replaced with ``--overwrite``, which removes only the
  files of genlab's run layout (``RUN_LAYOUT``, recorded in ``run.json``); anything else
  in the folder (your notes, your data) stays, and so does anything behind a symbolic link.
* A folder that is neither empty nor a run (``/``, your home, a project folder) is refused.
* A command that writes named files (``sample -o``, ``evaluate --json``, ``upscale``,
  ``compose``, ``design``) refuses to replace an existing file unless ``--overwrite`` is
  given, and checks that its output folder can be written before it starts the work.
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Iterable

from .errors import OutputExistsError

RUN_FILE = "run.json"
# Everything genlab writes in a run folder: a top-level file (None) or a folder and the
# patterns of the files genlab writes inside it. ``--overwrite`` removes exactly these.
RUN_LAYOUT: dict[str, list[str] | None] = {
    "run.json": None,
    "metrics.jsonl": None,
    "eval.json": None,
    "report.html": None,
    "model": ["config.json", "model.safetensors", ".model.*.tmp", ".config.json.*.tmp"],
    "checkpoints": ["last.pt", "previous.pt", ".last.pt.*.tmp", ".previous.pt.*.tmp"],
    "figures": ["*.png", "*.gif", ".*.tmp", "music/piece_*.mid", "music/piece_*.wav",
                "music/piece_*.png"],
    "samples": ["step_*.png"],
    "tensorboard": ["events.out.tfevents.*"],
}
# temporary files of genlab's atomic writes at the top of a run folder
_TOP_TEMPORARIES = (".run.json.", ".eval.json.", ".report.html.")


def layout_record() -> dict[str, list[str] | None]:
    """The run layout as recorded in ``run.json`` (what ``--overwrite`` may remove)."""
    return {k: (list(v) if v is not None else None) for k, v in RUN_LAYOUT.items()}


def is_run_folder(path: Path) -> bool:
    return (path / RUN_FILE).is_file()


def prepare_run_folder(out: str | os.PathLike, *, overwrite: bool = False,
                       replace_origin: str | None = None) -> list[Path]:
    """Make sure a new run may be written into ``out``.

    Args:
        out: the run folder.
        overwrite: replace a run already there (only genlab's files are removed).
        replace_origin: also replace a run whose ``run.json`` says it was made by this
            command (``"quickstart"`` re-runs itself), again removing only genlab's files.
    Returns:
        The files removed (empty for a new or empty folder).
    Raises:
        OutputExistsError: ``out`` is a file, a non-empty folder that is not a run, or a
            run that may not be replaced.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} is a file, not a folder: choose a folder for the run")
    if not out.exists():
        return []
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return []
    if not is_run_folder(out):
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise OutputExistsError(
            f"{out} is not empty ({len(entries)} entries: {shown}) and is not a genlab run; a new "
            "run goes into a new or empty folder, so nothing there is touched: choose another --out")
    if not overwrite:
        origin = _origin(out)
        if replace_origin is None or origin != replace_origin:
            raise OutputExistsError(
                f"{out} already holds a run: pass --resume to continue it, --overwrite to replace it "
                "(only the files genlab wrote there are removed), or choose another --out")
    return remove_run_files(out)


def _origin(out: Path) -> str | None:
    try:
        info = json.loads((out / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info.get("origin") if isinstance(info, dict) else None


def remove_run_files(out: str | os.PathLike) -> list[Path]:
    """Remove the files of genlab's run layout from the run folder ``out`` and the folders
    they leave empty. Files genlab did not write, and anything behind a symbolic link,
    are kept. Returns the removed files."""
    out = Path(out)
    removed: list[Path] = []
    for name, patterns in RUN_LAYOUT.items():
        p = out / name
        if p.is_symlink():
            continue
        if patterns is None:
            if p.is_file():
                p.unlink()
                removed.append(p)
            continue
        if not p.is_dir():
            continue
        for pat in patterns:
            for f in sorted(p.glob(pat)):
                if f.is_file() and not f.is_symlink() and not any(q.is_symlink() for q in f.parents if p in q.parents):
                    f.unlink()
                    removed.append(f)
        for d in sorted((q for q in p.rglob("*") if q.is_dir() and not q.is_symlink()), reverse=True):
            _rmdir_if_empty(d)
        _rmdir_if_empty(p)
    for f in out.iterdir():
        if f.is_file() and f.name.endswith(".tmp") and f.name.startswith(_TOP_TEMPORARIES):
            f.unlink()
            removed.append(f)
    return removed


def _rmdir_if_empty(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass  # not empty: the user's files stay


# the temporaries genlab's atomic writes leave in a run folder when killed mid-write:
# sub-folder -> the name prefixes (every one ends in ".tmp")
RUN_TEMPORARIES: dict[str, tuple[str, ...]] = {
    "": _TOP_TEMPORARIES, "model": (".model.", ".config.json."), "figures": (".",),
    "checkpoints": (".last.pt.", ".previous.pt."),
}


def remove_temporaries(folder: str | os.PathLike, prefixes: tuple[str, ...]) -> list[Path]:
    """Remove the files of ``folder`` named ``<prefix>...tmp`` for one of ``prefixes`` (the
    temporaries of genlab's own atomic writes); nothing else, nothing behind a symbolic
    link. Returns what was removed."""
    folder = Path(folder)
    removed = []
    if folder.is_dir() and not folder.is_symlink():
        for f in folder.iterdir():
            if f.is_file() and f.name.endswith(".tmp") and f.name.startswith(prefixes):
                f.unlink()
                removed.append(f)
    return removed


def clean_run_temporaries(out: str | os.PathLike) -> list[Path]:
    """Remove temporary files that a kill during an atomic write left in a run folder
    (only names of genlab's own making: ``.run.json.*.tmp``, ``model/.model.*.tmp``,
    ``checkpoints/.last.pt.*.tmp``, ...)."""
    out = Path(out)
    removed: list[Path] = []
    for sub, prefixes in RUN_TEMPORARIES.items():
        removed += remove_temporaries(out / sub if sub else out, prefixes)
    return removed


def check_new_files(paths: Iterable[str | os.PathLike], *, overwrite: bool = False) -> None:
    """Refuse to replace existing files unless ``overwrite`` (one line naming the first).

    Raises:
        OutputExistsError: a path exists (or is a folder, which is never replaced).
    """
    for p in map(Path, paths):
        if p.is_dir():
            raise OutputExistsError(f"{p} is a folder; give a file name to write to")
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p} already exists and genlab does not replace files it did not "
                                    "write: pass --overwrite to replace it, or choose another name")


def check_writable(folder: str | os.PathLike, *, probe_bytes: int = 1 << 16) -> Path:
    """Create ``folder`` if needed and check a file can be written there (a 64 KiB probe,
    removed at once), so a command fails before its work rather than after it.

    Raises:
        OSError: with the folder named (read-only, full disk, not a folder, ...).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None
    probe = folder / f".genlab-write-probe-{os.getpid()}.tmp"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * probe_bytes)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(folder)) from None
    finally:
        if probe.exists():
            probe.unlink()
    return folder


def describe_os_error(e: OSError) -> str:
    """One line for an OS error: the path and what the errno means."""
    what = os.strerror(e.errno) if e.errno else (e.strerror or type(e).__name__)
    hint = {errno.ENOSPC: " (the disk is full: free space or choose another folder)",
            errno.EROFS: " (the file system is read-only: choose another folder)",
            errno.EACCES: " (no permission: choose a folder you can write to)",
            errno.EDQUOT: " (disk quota exceeded)"}.get(e.errno or 0, "")
    path = e.filename if e.filename is not None else None
    return f"{path}: {what}{hint}" if path else f"{what}{hint}"
