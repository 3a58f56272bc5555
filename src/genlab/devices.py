"""Devices and numeric precision: where a model trains and samples, and in what precision.

``resolve_device("auto")`` picks CUDA, then Apple's MPS, then the CPU; a named device that
is not there is refused in one line (``DeviceError``), never a traceback from deep inside
torch. ``precision_context(device, precision)`` is the autocast region a forward pass runs
in:

* ``"32"`` — plain float32 (the default; the only mode in which a resumed run is
  bit-identical to an uninterrupted one on a CPU);
* ``"bf16-mixed"`` — autocast to bfloat16 (CPU and recent GPUs); no loss scaling needed;
* ``"16-mixed"`` — autocast to float16 with a gradient scaler (``make_scaler``) against
  underflow; its scale is saved in checkpoints.

Mixed precision changes the arithmetic, so a run's ``precision`` cannot change on resume;
its ``device`` can (a run started on a GPU may finish on a CPU), with the arithmetic of the
new device from then on.

Random draws that make samples reproducible are taken on the CPU from a seeded
``torch.Generator`` and moved to the model's device (``noise``), so a seed gives the same
noise on every device.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from .errors import GenlabError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")


class DeviceError(GenlabError, ValueError):
    """A device that is not there, or a precision it cannot run."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The device kinds this machine can train on, best first (``cpu`` always last)."""
    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    if _mps_available():
        out.append("mps")
    return [*out, "cpu"]


def check_device_spec(spec: Any) -> str:
    """``spec`` as a device string (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``), or a
    ``DeviceError`` naming the choices. Checks the spelling only, not the machine."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    if not isinstance(spec, str):
        raise DeviceError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {spec!r}")
    kind, _, index = spec.partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise DeviceError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {spec!r}")
    return spec


def resolve_device(spec: Any = "auto") -> torch.device:
    """The ``torch.device`` for ``spec`` on this machine.

    ``"auto"`` (or ``None``): ``cuda`` if a GPU is visible, else ``mps``, else ``cpu``.
    Under torchrun, ``"cuda"`` means this process's GPU (``LOCAL_RANK``).

    Raises:
        DeviceError: the device is misspelled or not on this machine (the message lists
            what is).
    """
    import os

    spec = "auto" if spec is None else check_device_spec(spec)
    if spec == "auto":
        spec = available_devices()[0]
    kind, _, index = spec.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r}: no CUDA GPU is visible here (available: "
                              f"{', '.join(available_devices())}); use --device cpu or auto")
        n = torch.cuda.device_count()
        i = int(index) if index else int(os.environ.get("LOCAL_RANK", 0)) % max(n, 1)
        if i >= n:
            raise DeviceError(f"device {spec!r}: this machine has {n} CUDA GPU(s), cuda:0..cuda:{n - 1}")
        return torch.device("cuda", i)
    if kind == "mps" and not _mps_available():
        raise DeviceError(f"device 'mps': Apple's Metal backend is not available here (available: "
                          f"{', '.join(available_devices())})")
    return torch.device(kind)


def check_precision(precision: Any) -> str:
    """``precision`` if it is one of ``PRECISIONS`` (``32`` may be given as an int)."""
    if precision == 32 and not isinstance(precision, bool):
        precision = "32"
    if precision not in PRECISIONS:
        raise DeviceError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision (``None`` for ``"32"``)."""
    return {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}[check_precision(precision)]


def check_precision_on(device: torch.device, precision: str) -> None:
    """Refuse a precision the device cannot run (one line)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise DeviceError(f"precision 'bf16-mixed': {torch.cuda.get_device_name(device)} has no bfloat16; "
                          "use --precision 16-mixed")
    if device.type == "mps" and dtype == torch.bfloat16:
        raise DeviceError("precision 'bf16-mixed' is not supported on mps; use --precision 16-mixed or 32")


def precision_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast region of a forward pass at ``precision`` on ``device`` (a no-op at
    ``"32"``)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Leave any autocast region (the backward pass and the optimizer step run outside it)."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def make_scaler(device: torch.device, precision: str) -> Any:
    """A gradient scaler for ``"16-mixed"`` (``None`` otherwise): float16 gradients
    underflow without one."""
    if check_precision(precision) != "16-mixed":
        return None
    return torch.amp.GradScaler(device.type)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (``cpu`` for one with neither)."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


def noise(shape: tuple[int, ...] | list[int], *, generator: torch.Generator | None = None,
          device: torch.device | str = "cpu", kind: str = "normal", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal (``kind="normal"``) or uniform ``[0, 1)`` draws of ``shape``, taken on the CPU
    from ``generator`` (reproducible on every device) and moved to ``device``."""
    draw = torch.randn if kind == "normal" else torch.rand
    if generator is None:
        return draw(*shape, dtype=dtype, device=device)
    return draw(*shape, generator=generator, dtype=dtype).to(device)


def bernoulli(p: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``torch.bernoulli(p)`` drawn on the CPU from ``generator`` (the same for a seed on
    every device), on ``p``'s device; without a generator, drawn where ``p`` is."""
    if generator is None or p.device.type == "cpu":
        return torch.bernoulli(p, generator=generator)
    return torch.bernoulli(p.detach().cpu(), generator=generator).to(p.device)


def to_device(value: Any, device: torch.device) -> Any:
    """Tensors in ``value`` (a tensor, a dict or list/tuple of them) moved to ``device``;
    other values as they are."""
    if torch.is_tensor(value):
        return value.to(device, non_blocking=device.type == "cuda")
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value
