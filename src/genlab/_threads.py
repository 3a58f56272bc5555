"""CPU thread settings, applied before torch is first imported.

On a busy machine torch's OpenMP worker threads spin-wait between parallel regions and
can run 10-15x slower than with passive waiting. OpenMP reads ``OMP_WAIT_POLICY`` only
when the runtime starts (the first ``import torch``), so genlab sets it as early as it can:
``import genlab`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user already chose a policy.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Iterator


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


THREADS_PER_CPU = 4  # more threads than this per CPU only adds overhead (and can abort libgomp)


def max_threads() -> int:
    """The most CPU threads genlab accepts: ``4 x os.cpu_count()`` of this machine."""
    return THREADS_PER_CPU * (os.cpu_count() or 1)


def check_threads(n: object, what: str = "threads") -> int:
    """``n`` as an int in ``[1, max_threads()]``, else ``ValueError`` (naming ``what`` and,
    for too many, this machine's CPU count)."""
    if isinstance(n, bool) or not isinstance(n, int):
        try:
            as_int = int(n)  # type: ignore[call-overload]
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{what} must be a positive integer, got {n!r}") from None
        if as_int != n:
            raise ValueError(f"{what} must be a positive integer, got {n!r}")
        n = as_int
    if n < 1:
        raise ValueError(f"{what} must be >= 1, got {n}")
    if n > max_threads():
        cpus = os.cpu_count() or 1
        raise ValueError(f"{what} must be <= {max_threads()} ({THREADS_PER_CPU} x the {cpus} "
                         f"CPU{'s' if cpus != 1 else ''} of this machine), got {n}")
    return n


def set_threads(n: int | None) -> int:
    """Set the number of CPU threads torch uses for intra-op parallelism.

    Args:
        n: threads to use, 1 to ``max_threads()`` (4 x this machine's CPUs); ``None``
            keeps torch's default (the number of physical cores).
    Returns:
        The number of threads now in effect.
    Raises:
        ValueError: ``n`` is not a whole number in that range (torch's OpenMP runtime
            would abort the process on absurd counts such as 100000).
    """
    import torch

    if n is not None:
        torch.set_num_threads(check_threads(n))
    return torch.get_num_threads()


# Below this many parameters a model trains faster on one thread than on one per core:
# the per-step work is too small to pay for OpenMP's hand-offs (benchmarks/threads.py,
# 2026-12-02, 2 cores: the quickstart VAE, 342k parameters, 2.9x faster on 1 thread; an
# MLP VAE of 1.09M parameters 1.08x; a conv VAE of 551k 0.92x; a 1.07M LSTM 0.78x).
SMALL_MODEL_PARAMETERS = 500_000


@contextlib.contextmanager
def training_threads(n: int | None, model: object) -> Iterator[int]:
    """Threads for one ``fit``: ``n`` when given; else 1 for a small model (see
    ``SMALL_MODEL_PARAMETERS``) and torch's default otherwise. torch's setting is process
    wide, so the previous count is restored afterwards when genlab chose it."""
    import torch

    if n is not None:
        yield set_threads(n)
        return
    # core layer (below the contract): torch modules count their parameters, numpy models have none
    params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else 0
    if not 0 < params < SMALL_MODEL_PARAMETERS:
        yield torch.get_num_threads()
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield 1
    finally:
        torch.set_num_threads(before)
