"""Data-parallel training under ``torchrun`` (one process per core, GPU or machine).

``torchrun --nproc_per_node 2 -m genlab train vae --data fashion-mnist ...`` (or ``train
gan``, any torch family) runs the same command in several processes; the trainer notices
``WORLD_SIZE > 1``, joins the process group (gloo on CPU, NCCL on CUDA), starts every
process from rank 0's weights, gives each process a contiguous slice of every global batch
(``shard_rows``) and averages the gradients of each update over the processes before
clipping and stepping (``average_gradients``), so the *global* batch and the
hyperparameters mean the same as in a single process: with equal slices the weights equal
one process's to float rounding (statistics over the batch — batch norm, minibatch std —
are taken per process, as in ``DistributedDataParallel``). Only rank 0 writes logs,
checkpoints, the model and the report. Across machines the run folder must be on a
shared file system (rank 0 writes, every rank reads it on ``--resume``).
"""
from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment (``(0, 1)`` when not launched by it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


_COMM = {"device": torch.device("cpu")}  # where the small tensors of collectives live (NCCL: the GPU)


def setup(device: torch.device | None = None) -> tuple[int, int]:
    """Join the process group if launched by torchrun; returns ``(rank, world_size)``.

    The backend follows the training ``device``: NCCL when it is a CUDA GPU (this process's
    GPU becomes the current one), gloo otherwise. The group is joined once per process and
    left at exit (``_leave``): joining a second time after leaving can read the first
    group's rendezvous keys and hang, so a process that fits twice (two models in one
    script) keeps one group."""
    rank, world = rank_and_world()
    device = torch.device("cpu") if device is None else device
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)
    if world > 1:
        _COMM["device"] = device if dist.get_backend() == "nccl" else torch.device("cpu")
    return rank, world


def _leave() -> None:
    """Destroy the process group at exit (a process that exits with a live gloo group can
    abort)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    return rank_and_world()[0] == 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_finite(value: torch.Tensor) -> bool:
    """True only if ``value`` is finite on every process."""
    ok = torch.tensor([1.0 if bool(torch.isfinite(value).all()) else 0.0], device=_COMM["device"])
    if dist.is_initialized():
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)


def mean_logs(logs: dict[str, float]) -> dict[str, float]:
    """Average scalar logs over processes (keys in the same order everywhere)."""
    if not dist.is_initialized() or not logs:
        return logs
    keys = sorted(logs)
    t = torch.tensor([logs[k] for k in keys], dtype=torch.float64, device=_COMM["device"])
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def shard_rows(n: int, rank: int, world: int, group: int = 1) -> slice:
    """This process's contiguous rows of a global batch of ``n`` rows, in whole groups of
    ``group`` rows (PacGAN packs), the groups spread as evenly as possible; a batch with
    fewer groups than processes gives each process one group (shared)."""
    if world == 1:
        return slice(0, n)
    groups = max(n // group, 1)
    if groups >= world:
        base, extra = divmod(groups, world)
        start = rank * base + min(rank, extra)
        stop = start + base + (1 if rank < extra else 0)
    else:
        start = rank % groups
        stop = start + 1
    return slice(start * group, min(stop * group, n))


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every process rank 0's parameters and buffers."""
    if dist.is_initialized():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, 0)


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over the processes (one all-reduce of a flat
    buffer). A parameter without a gradient counts as a zero gradient, so every process
    reduces the same tensors."""
    if not dist.is_initialized():
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch._utils._flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for g, avg in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        g.copy_(avg)


def teardown() -> None:
    """End a finished run: every rank waits for the others (the group itself stays for a
    later fit of this process and is destroyed at exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
