"""CPU thread settings, applied before torch is first imported.

On a busy machine torch's OpenMP worker threads spin-wait between parallel regions and
can run 10-15x slower than with passive waiting. OpenMP reads ``OMP_WAIT_POLICY`` only
when the runtime starts (the first ``import torch``), so genlab sets it as early as it can:
``import genlab`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user already chose a policy.
"""
from __future__ import annotations

import os
import sys
import warnings


def apply_wait_policy() -> None:
    """Default ``OMP_WAIT_POLICY`` to ``PASSIVE`` (warn if torch already started without it)."""
    if "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if "torch" in sys.modules:
        warnings.warn(
            "torch was imported before genlab, so OMP_WAIT_POLICY=PASSIVE came too late for "
            "its OpenMP runtime; on a busy machine training may run much slower. Import genlab "
            "first or export OMP_WAIT_POLICY=PASSIVE.",
            RuntimeWarning,
            stacklevel=3,
        )


def set_threads(n: int | None) -> int:
    """Set the number of CPU threads torch uses for intra-op parallelism.

    Args:
        n: threads to use; ``None`` keeps torch's default (the number of physical cores).
    Returns:
        The number of threads now in effect.
    """
    import torch

    if n is not None:
        if int(n) < 1:
            raise ValueError(f"threads must be >= 1, got {n}")
        torch.set_num_threads(int(n))
    return torch.get_num_threads()
