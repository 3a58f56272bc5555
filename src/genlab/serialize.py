"""The one serializer: how every genlab model (torch or numpy) is written to a folder and
read back, and the atomic-write and hashing helpers the rest of genlab uses for files.

A saved model is a folder with ``config.json`` (``model_type``, ``genlab_version``,
``format_version``, ``log_prob_kind``, the model config, ``weights_sha256``) and
``model.safetensors`` (tensors only). Loading never unpickles anything.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .errors import ModelFormatError

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MAX_CONFIG_BYTES = 1 << 20  # a config.json is a few KB; anything past 1 MiB is not one of ours
MAX_PARAMETERS = 2_000_000_000  # a model config asking for more is refused before it is built


# ----------------------------------------------------------------------------- IO helpers
def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, before_replace: Any = None) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file.

    Args:
        before_replace: called once the new bytes are safely on disk, just before they
            take ``path``'s place (e.g. to keep the old file under another name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600; give the usual 0644 (umask)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:  # name the file in the message
            raise type(e)(e.errno, e.strerror, str(path)) from None
        raise


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as hex (read in 1 MiB blocks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_file_hash(path: str | os.PathLike, header: dict[str, Any], key: str = "weights_sha256") -> None:
    """Check ``path`` against the SHA-256 that ``header[key]`` recorded when it was saved.

    Models saved before hashes were recorded have none; they load unchecked.

    Raises:
        ModelFormatError: the file's bytes are not the ones that were saved.
    """
    want = header.get(key)
    if want is None:
        return
    if not isinstance(want, str):
        raise ModelFormatError(f"{Path(header.get('_dir', '.')) / CONFIG_FILE}: {key} must be a string")
    got = file_sha256(path)
    if got != want:
        raise ModelFormatError(
            f"{path} is truncated or corrupt, or was altered after it was saved: its SHA-256 is "
            f"{got[:16]}..., {CONFIG_FILE} recorded {want[:16]}... (restore it from a backup or retrain)")


def check_finite_tensors(tensors: Any, where: str, *, error: type[Exception] | None = None) -> None:
    """Raise if any floating tensor/array in the mapping ``tensors`` holds NaN or infinity.

    Args:
        tensors: name -> torch tensor or numpy array.
        where: the file or model named in the message.
        error: exception type (default ``ModelFormatError``).
    """
    import numpy as np

    err = error or ModelFormatError
    for name, t in tensors.items():
        if torch.is_tensor(t):
            bad = t.is_floating_point() and not bool(torch.isfinite(t).all())
        else:
            a = np.asarray(t)
            bad = a.dtype.kind == "f" and not bool(np.isfinite(a).all())
        if bad:
            raise err(f"{where}: tensor {name!r} holds NaN or infinite values; "
                      "such weights give NaN samples and are refused")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_model_header(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``config.json`` of a saved model folder."""
    path = Path(path)
    if path.is_file() and path.name in (CONFIG_FILE, WEIGHTS_FILE):
        path = path.parent
    cfg_path = path / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"no saved model at {path}: the folder does not exist")
    if not cfg_path.is_file():
        # a run folder keeps its model in run/model/
        if (path / "model" / CONFIG_FILE).is_file():
            return read_model_header(path / "model")
        raise ModelFormatError(
            f"{path} is not a genlab model: it has no {CONFIG_FILE} "
            f"(a saved model is a folder with {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    size = cfg_path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ModelFormatError(f"{cfg_path} is {size:,} bytes; a genlab config.json is at most "
                               f"{MAX_CONFIG_BYTES:,} bytes, so this is not one")
    try:
        header = json.loads(cfg_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{cfg_path} is not valid JSON ({e}); the file is damaged") from None
    except RecursionError:
        raise ModelFormatError(f"{cfg_path} is nested too deeply to be a genlab model config") from None
    if not isinstance(header, dict) or "model_type" not in header:
        raise ModelFormatError(f"{cfg_path} is not a genlab model config (no 'model_type')")
    if not isinstance(header["model_type"], str):
        raise ModelFormatError(f"{cfg_path}: model_type must be a string, got "
                               f"{type(header['model_type']).__name__}")
    if not isinstance(header.get("config", {}), dict):
        raise ModelFormatError(f"{cfg_path}: 'config' must be an object, got "
                               f"{type(header['config']).__name__}")
    fv = header.get("format_version", 1)
    if not isinstance(fv, int) or isinstance(fv, bool) or fv < 1:
        raise ModelFormatError(f"{cfg_path}: format_version must be a positive integer, got {fv!r}")
    if fv > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} was saved by genlab {header.get('genlab_version', '?')} in format "
            f"{fv}; this genlab {__version__} reads format <= {FORMAT_VERSION}. "
            "Upgrade genlab (pip install -U genlab) to load it."
        )
    header["_dir"] = str(path)
    return header


def check_config_types(cls: type, d: dict[str, Any], where: str) -> None:
    """Check the JSON values of a saved config against the config dataclass's field types
    before anything is built from them (a list where a string belongs, a string where a
    number belongs, ...).

    Raises:
        ModelFormatError: naming ``where`` and the field.
    """
    import typing

    hints = typing.get_type_hints(cls)
    for k, v in d.items():
        hint = hints.get(k)
        if hint is None:
            continue
        if not _json_matches(v, str(hint)):
            raise ModelFormatError(f"{where}: config field {k!r} has the wrong type "
                                   f"({type(v).__name__} {str(v)[:40]!r}; expected {_type_name(hint)})")


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _json_matches(v: Any, text: str) -> bool:
    """Whether a JSON value fits a type hint given as text (loose: ints pass as floats)."""
    if v is None:
        return "None" in text or "Optional" in text or "Any" in text
    if "Any" in text:
        return True
    if isinstance(v, bool):
        return "bool" in text
    if isinstance(v, (int, float)):
        return ("int" in text and isinstance(v, int)) or "float" in text
    if isinstance(v, str):
        return "str" in text or "Literal" in text
    if isinstance(v, list):
        if not ("tuple" in text or "list" in text or "Sequence" in text):
            return False
        return all(x is None or isinstance(x, (bool, int, float, str, list, dict)) for x in v)
    if isinstance(v, dict):
        return "dict" in text or "Mapping" in text
    return False


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header, read without loading data.

    Raises:
        ModelFormatError: the header is not a safetensors header.
    """
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("shorter than a safetensors header")
            (n,) = struct.unpack("<Q", head)
            size = path.stat().st_size
            if n > min(size - 8, 100 << 20):
                raise ValueError(f"header length {n} does not fit a {size}-byte file")
            meta = json.loads(f.read(n).decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("header is not an object")
        out = {}
        for k, v in meta.items():
            if k == "__metadata__":
                continue
            shape = v.get("shape") if isinstance(v, dict) else None
            if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
                raise ValueError(f"tensor {k!r} has no valid shape")
            out[k] = tuple(shape)
        return out
    except (ValueError, UnicodeDecodeError, RecursionError, OSError, struct.error) as e:
        raise ModelFormatError(f"{path} is truncated or corrupt and cannot be read ({e})") from None


# ----------------------------------------------------------------------------- models
def save_model_folder(path: str | os.PathLike, *, model_type: str, log_prob_kind: str,
                      config: dict[str, Any], tensors: Any, extra: dict[str, Any] | None = None,
                      name: str | None = None) -> Path:
    """Write a saved-model folder: ``model.safetensors`` first, then ``config.json``.

    Both files are replaced atomically (a crash leaves the old or the new file, never half
    of one), and ``config.json`` records the SHA-256 of the weights it belongs with.

    Args:
        path: the folder (created if needed).
        model_type, log_prob_kind: the class's registry name and likelihood kind.
        config: the model config as JSON values (``Config.to_dict()``).
        tensors: what ``model.safetensors`` holds: an ``nn.Module`` (its state, shared
            tensors stored once) or a mapping of names to torch tensors or numpy arrays.
        extra: more keys for ``config.json`` (e.g. a Bayesian network's graph).
        name: who is saved, for the error message (default ``model_type``).
    Returns:
        the folder.
    Raises:
        ValueError: a floating tensor holds NaN or infinity (nothing is written).
    """
    from torch import nn

    state = tensors.state_dict() if isinstance(tensors, nn.Module) else tensors
    check_finite_tensors(state, f"{name or model_type} (not saved)", error=ValueError)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".model.", suffix=".tmp")
    os.close(fd)
    try:
        try:
            _write_safetensors(tmp, tensors, {"model_type": model_type, "genlab_version": __version__})
        except Exception as e:  # safetensors reports a full disk as its own error type
            if isinstance(e, OSError) and e.filename is not None:
                raise
            io_error = isinstance(e, OSError) or "ioerror" in str(e).lower() or "space" in str(e).lower()
            if not io_error:  # not the disk's fault: the real error, not an I/O error it never was
                raise
            import errno as _errno

            code = getattr(e, "errno", None) or (_errno.ENOSPC if "space" in str(e).lower() else _errno.EIO)
            raise OSError(code, os.strerror(code), str(path / WEIGHTS_FILE)) from None
        os.chmod(tmp, default_file_mode())
        digest = file_sha256(tmp)
        os.replace(tmp, path / WEIGHTS_FILE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    atomic_write_json(path / CONFIG_FILE, {
        "model_type": model_type,
        "genlab_version": __version__,
        "format_version": FORMAT_VERSION,
        "log_prob_kind": log_prob_kind,
        "config": config,
        "weights_sha256": digest,
        **(extra or {}),
    })
    return path


def cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A module's state on the CPU, each tensor once: names that alias one tensor (tied
    weights: the same data, shape and strides) keep only their first name, as safetensors'
    ``save_model`` does (``load_model`` fills the others in); tensors that are distinct views
    of one buffer (cuDNN's flattened RNN weights) become separate tensors."""
    seen: set[tuple] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        key = (t.device, t.data_ptr(), t.dtype, tuple(t.shape), tuple(t.stride()))
        if t.numel() and key in seen:
            continue
        seen.add(key)
        out[name] = t.detach().to("cpu", copy=True).contiguous()
    return out


def _write_safetensors(path: str, tensors: Any, metadata: dict[str, str]) -> None:
    """``tensors`` (a module, or a mapping of torch tensors or numpy arrays) to ``path``."""
    from torch import nn

    if isinstance(tensors, nn.Module):
        state = tensors.state_dict()
        if all(t.device.type == "cpu" for t in state.values()):
            from safetensors.torch import save_model

            save_model(tensors, path, metadata=metadata)
            return
        tensors = cpu_state(state)  # e.g. a CUDA LSTM's weights are views of one flat cuDNN buffer
    tensors = dict(tensors)
    if tensors and all(torch.is_tensor(t) for t in tensors.values()):
        from safetensors.torch import save_file as save_torch

        save_torch({k: t.contiguous() for k, t in tensors.items()}, path, metadata=metadata)
        return
    import numpy as np
    from safetensors.numpy import save_file as save_numpy

    save_numpy({k: np.ascontiguousarray(t.numpy() if torch.is_tensor(t) else t) for k, t in tensors.items()},
               path, metadata=metadata)


def read_model_config(config_class: type, header: dict[str, Any]) -> Any:
    """The model config of a saved folder's ``config.json``: JSON types checked against
    the dataclass's field types first, then built (and validated) by ``from_dict``.

    Raises:
        ModelFormatError: naming ``config.json`` and the problem.
    """
    where = Path(header["_dir"]) / CONFIG_FILE
    d = header.get("config", {})
    check_config_types(config_class, d, str(where))
    try:
        return config_class.from_dict(d)
    except (TypeError, ValueError) as e:
        raise ModelFormatError(f"{where}: invalid {header['model_type']} config: {e}") from None


class SavedWeights:
    """The ``model.safetensors`` of a saved folder, checked before anything reads it: the
    file exists, its SHA-256 is the one ``config.json`` recorded (when it recorded one) and
    its header parses (``shapes``: tensor name -> shape, known without loading data).

    ``arrays()`` reads numpy arrays and ``load_into(module)`` a torch module's state; both
    refuse non-finite values and name the file in every error.
    """

    def __init__(self, header: dict[str, Any]):
        folder = Path(header["_dir"])
        self.path = folder / WEIGHTS_FILE
        if not self.path.is_file():
            raise ModelFormatError(f"{folder} has {CONFIG_FILE} but no {WEIGHTS_FILE}")
        verify_file_hash(self.path, header)
        self.shapes = safetensors_shapes(self.path)

    def arrays(self, expected: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
        """The tensors as numpy arrays.

        Args:
            expected: name -> shape the model needs; the file must hold exactly these
                (checked from the header, before the data is read).
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        if expected is not None:
            got = {k: tuple(v) for k, v in self.shapes.items()}
            want = {k: tuple(v) for k, v in expected.items()}
            if got != want:
                wrong = sorted(set(got) ^ set(want)) or sorted(k for k in want if got[k] != want[k])
                k = wrong[0]
                raise ModelFormatError(f"{self.path} does not match {CONFIG_FILE}: tensor {k!r} is "
                                       f"{list(got[k]) if k in got else 'missing'} in the file, "
                                       f"{list(want[k]) if k in want else 'not used'} by the config")
        try:
            arrays = load_file(str(self.path))
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelFormatError(f"{self.path} is truncated or corrupt and cannot be read ({e})") from None
        check_finite_tensors(arrays, str(self.path))
        return arrays

    def load_into(self, module: Any) -> None:
        """Load the tensors into ``module`` (every one of its parameters and buffers, no
        other), then check that they are finite."""
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        try:
            missing, unexpected = load_model(module, self.path, strict=False)
        except (SafetensorError, OSError, RuntimeError, ValueError) as e:
            raise ModelFormatError(
                f"{self.path} is truncated or corrupt and cannot be read ({e})"
            ) from None
        if missing or unexpected:
            raise ModelFormatError(
                f"{self.path} does not match the {getattr(module, 'model_type', '')} config: "
                f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
            )
        check_finite_tensors(module.state_dict(), str(self.path))
