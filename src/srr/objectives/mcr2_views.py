"""Unsupervised MCR²: rate reduction with no labels, the augmented views of each image forming its group.

Every image i of the global batch (n images) gives V = 2 + M views (:mod:`srr.objectives.views`); the student
network (backbone → projection head, :mod:`srr.objectives.selfsup`; no teacher) maps them to L2-normalised features
z_v(i) ∈ ℝᵖ. With Z (nV × p) all of them and Z_i (V × p) those of image i,

    R   = ½ logdet(I_p + p/(nV ε²) ZᵀZ),
    R^c = Σ_i (V/(nV)) · ½ logdet(I_p + p/(V ε²) Z_iᵀ Z_i) = 1/n · Σ_i ½ logdet(I_V + p/(V ε²) Z_i Z_iᵀ),
    loss = R^c − R = −ΔR,

the MCR² loss of Z with one class per image (expand all the features, compress each image's views together). ZᵀZ
and the sum over images of the per-image log-determinants are sums over images, so the loss is that of the whole
global batch under accumulation and data parallelism. ``eps`` is ε, not ε². Logged terms: ``train_R``,
``train_Rc``, ``train_delta_R``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..measures import logdet_i_plus
from ..settings import option
from .base import Inputs, register_objective
from .selfsup import SelfSupConfig, SelfSupervised, full_precision

__all__ = ["MCR2ViewsConfig", "MCR2Views", "views_rate_reduction"]


@dataclass
class MCR2ViewsConfig(SelfSupConfig):
    """MCR² of the views' features, the views of each image being one group."""

    eps: float = option(math.sqrt(0.5), "distortion ε, not ε² (default sqrt(0.5): the official --eps 0.5 is ε²)",
                        low=1e-100, high=1e100, low_open=True)


def views_rate_reduction(views: list[Tensor], eps: float) -> dict[str, Tensor]:
    """``{"loss", "R", "Rc", "delta_R"}`` of the L2-normalised ``views`` (each n × p, row i = image i)."""
    z = torch.stack(views, dim=1)
    n, v, p = z.shape
    r = 0.5 * logdet_i_plus(z.reshape(n * v, p).mT @ z.reshape(n * v, p), p / (n * v * eps ** 2))
    rc = (0.5 * logdet_i_plus(z @ z.mT, p / (v * eps ** 2))).sum() / n
    return {"loss": rc - r, "R": r, "Rc": rc, "delta_R": r - rc}


@register_objective
class MCR2Views(SelfSupervised):
    """MCR² without labels: the augmented views of each image are its group."""

    name = "mcr2_views"
    default_model = "crate_nano"
    Config = MCR2ViewsConfig
    uses_teacher = False
    decomposable = False

    def statistics(self, net: nn.Module, inputs: Inputs) -> dict[str, Tensor]:
        out = net(inputs.x)
        with full_precision(out[0]):
            views = [F.normalize(s.float(), dim=-1) for s in out]
            z = torch.stack(views, dim=1)
            n, v, p = z.shape
            rc = (0.5 * logdet_i_plus(z @ z.mT, p / (v * self.config.eps ** 2))).sum()
            return {"gram": sum(x.mT @ x for x in views), "rc": rc, "count": z.new_tensor(float(n))}

    def loss_from(self, stats: dict[str, Tensor]):
        n, gram = stats["count"].detach(), stats["gram"]
        p, v = gram.shape[-1], 2 + self.config.local_crops
        r = 0.5 * logdet_i_plus(gram, p / (float(n) * v * self.config.eps ** 2))
        rc = stats["rc"] / n
        return rc - r, {"R": r.detach(), "Rc": rc.detach(), "delta_R": (r - rc).detach()}
