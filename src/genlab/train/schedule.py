"""Optimizers and learning-rate schedules named in TrainConfig."""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from .config import TrainConfig


# layers whose >= 2-D weights are matrix products (decayed); everything else — biases,
# norm layers, embeddings, free parameters — is not (nanoGPT's / minGPT's groups)
DECAYED_LAYERS = (torch.nn.Linear, torch.nn.Bilinear, torch.nn.modules.conv._ConvNd, torch.nn.RNNBase,
                  torch.nn.MultiheadAttention)


def decay_groups(module: torch.nn.Module) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """``(decayed, not decayed)`` trainable parameters of ``module``: the >= 2-D weights of
    linear, convolutional, recurrent and attention layers (also behind a parametrization
    such as spectral norm) are decayed; biases, norm layers, embeddings and free
    parameters are not. Both lists follow ``module.parameters()`` order."""
    from torch.nn.utils import parametrize

    decayed: set[int] = set()
    for m in module.modules():
        if not isinstance(m, DECAYED_LAYERS):
            continue
        own = list(m.parameters(recurse=False))
        if parametrize.is_parametrized(m):
            own += list(m.parametrizations.parameters())
        decayed.update(id(p) for p in own if p.dim() >= 2)
    params = [p for p in module.parameters() if p.requires_grad]
    return [p for p in params if id(p) in decayed], [p for p in params if id(p) not in decayed]


def make_optimizer(params: torch.nn.Module | Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` with ``cfg``'s lr, momentum/betas and weight decay.

    Given a module, ``weight_decay`` applies to the groups of ``decay_groups`` only (unless
    ``cfg.decay_all``); given bare parameters, to all of them.
    """
    if isinstance(params, torch.nn.Module):
        decayed, rest = decay_groups(params)
        flat = [p for p in params.parameters() if p.requires_grad]  # one group: the module's order
    else:
        flat = [p for p in params if p.requires_grad]
        decayed, rest = flat, []
    if not flat:
        raise ValueError("the model has no trainable parameters")
    wd = cfg.weight_decay
    if wd == 0 or cfg.decay_all or not rest:
        groups: list[Any] = [{"params": flat, "weight_decay": wd}]
    else:
        groups = [g for g in ({"params": decayed, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0})
                  if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")  # TrainConfig validated already


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier of ``cfg.lr`` for the update made at ``step`` (0-based).

    Linear warm-up over ``warmup_steps``, then ``constant`` / ``step`` (x ``gamma`` every
    ``step_size`` epochs) / ``cosine`` (half cosine from 1 to ``min_lr_ratio``).
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        epoch = step // max(steps_per_epoch, 1)
        return cfg.gamma ** (epoch // cfg.step_size)
    # cosine over the steps after warm-up
    span = max(total_steps - cfg.warmup_steps, 1)
    t = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg, steps_per_epoch, total_steps)
    )
