"""Data-parallel training under ``torchrun`` (one process per core, GPU or machine).

``torchrun --nproc_per_node 2 -m genlab train vae --data fashion-mnist ...`` runs the same
command in several processes; the trainer notices ``WORLD_SIZE > 1``, joins the process
group (gloo on CPU, NCCL on CUDA), wraps the model in ``DistributedDataParallel`` and
gives each process a disjoint slice of every batch, so the *global* batch and the
hyperparameters mean the same as in a single process. Only rank 0 writes logs,
checkpoints, the model and the report. Across machines the run folder must be on a
shared file system (rank 0 writes, every rank reads it on ``--resume``).
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment (``(0, 1)`` when not launched by it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def setup() -> tuple[int, int]:
    """Join the process group if launched by torchrun; returns ``(rank, world_size)``."""
    rank, world = rank_and_world()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank, world


def is_main() -> bool:
    return rank_and_world()[0] == 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_finite(value: torch.Tensor) -> bool:
    """True only if ``value`` is finite on every process."""
    ok = torch.tensor([1.0 if bool(torch.isfinite(value).all()) else 0.0])
    if dist.is_initialized():
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)


def mean_logs(logs: dict[str, float]) -> dict[str, float]:
    """Average scalar logs over processes (keys in the same order everywhere)."""
    if not dist.is_initialized() or not logs:
        return logs
    keys = sorted(logs)
    t = torch.tensor([logs[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def teardown() -> None:
    """Leave the process group after a finished run: every rank waits for the others, then
    the group is destroyed (a process that exits with a live gloo group can abort)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
