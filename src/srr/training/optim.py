"""Optimisers: PyTorch's AdamW and SGD, and Lion (Chen et al., 2023), written here in a few lines.

Lion, per parameter with momentum m, gradient g, learning rate η, decoupled weight decay λ:

    update = sign(β₁ m + (1 − β₁) g)
    θ ← θ (1 − η λ) − η · update
    m ← β₂ m + (1 − β₂) g

Defaults β = (0.9, 0.99). Its updates have unit size per coordinate, so its learning rate is typically 3–10× smaller
and its weight decay 3–10× larger than AdamW's (the CRATE ImageNet recipe: lr 2.4e-4, wd 0.5).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["Lion", "build_optimizer"]


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0):
        if lr <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or weight_decay < 0:
            raise ConfigError(f"Lion needs lr > 0, betas in [0, 1) and weight_decay >= 0; got {lr}, {betas}, "
                              f"{weight_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad: Tensor = p.grad
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m = state["exp_avg"]
                if wd:
                    p.mul_(1 - lr * wd)
                p.add_(torch.sign(m * beta1 + grad * (1 - beta1)), alpha=-lr)
                m.mul_(beta2).add_(grad, alpha=1 - beta2)
        return loss


def build_optimizer(name: str, groups: list[dict], lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    """``adamw`` (torch.optim.AdamW), ``lion`` (:class:`Lion`) or ``sgd`` (momentum β₁, Nesterov)."""
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
    if name == "lion":
        return Lion(groups, lr=lr, betas=betas)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=betas[0], nesterov=betas[0] > 0)
    raise ConfigError(f"unknown optimizer {name!r}; use adamw, lion or sgd")
