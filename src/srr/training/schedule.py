"""Learning-rate schedule (linear warm-up then cosine decay to ``min_ratio`` of the peak) and weight-decay groups."""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["warmup_cosine", "parameter_groups"]


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
                  min_ratio: float = 0.0, steps_per_epoch: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR multiplier: ``(s+1)/warmup`` during warm-up, then ``min + (1−min)·½(1 + cos(π·progress))``.

    Stepped once per optimiser step. With ``steps_per_epoch`` the schedule moves once per epoch instead: ``s``,
    ``warmup`` and ``total`` are counted in whole epochs (the rate is constant within an epoch).
    """
    unit = max(1, steps_per_epoch or 1)
    total_steps = max(1, total_steps // unit if steps_per_epoch else total_steps)
    warmup_steps = round(warmup_steps / unit) if steps_per_epoch else warmup_steps
    warmup_steps = max(0, min(warmup_steps, total_steps))

    def factor(step: int) -> float:
        step //= unit
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# Parameters that are gains, temperatures or biases whatever their shape (ToST's τ and position bias, LayerScale).
NO_DECAY_SUFFIXES = ("pos_embedding", "cls_token", ".temp", ".denom_bias", ".gamma1", ".gamma2")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weight decay on matrices; none on norms, biases, embeddings (``nn.Embedding`` tables, positional
    embeddings), CLS tokens, ToST's temperature and position bias, and LayerScale gains."""
    embedding = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = (p.dim() <= 1 or name.endswith(NO_DECAY_SUFFIXES) or id(p) in embedding
                or "norm" in name.split(".")[-2:-1])
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
