"""SimDINO (Wu et al., 2025): DINO without prototypes, centring or sharpening, with a coding-rate term.

Student and EMA teacher (:mod:`srr.objectives.selfsup`) end in the projection head, whose output (dimension
p = ``--head-dim``) is L2-normalised: z_s^v for every view v = 1 … 2 + M, z_t^u for the global views u = 1, 2. Over
the n images of the global batch,

    loss = − 1/(n P) · Σ_i Σ_u Σ_{v ≠ u} ⟨z_t^u(i), z_s^v(i)⟩ − γ R̄,           P = 2(2 + M) − 2 pairs,
    R̄    = ½ · Σ_{u=1,2} ½ logdet(I_p + p/(n ε²) Z_uᵀ Z_u),                 γ = (p + n)/(p n),

where Z_u (n × p) holds the global view u of every image: by default the average ½(z_s^u + z_t^u) of student and
teacher (``--rate-features mean``, what the authors' code does), or the student's alone (``student``). Pairs of the
same view are skipped. ``eps`` is ε, not ε² (the authors' ``--eps 0.5`` is ε², hence the default √0.5). ``--gamma``
overrides γ (0: the formula). The Gram matrices Z_uᵀZ_u and the similarity sums are sums over images, so the loss is
that of the whole global batch for any accumulation or number of processes (the authors' n is the per-process batch
m times the N processes, with the Gram matrices all-reduced). Logged terms: ``train_cos`` (the mean similarity) and
``train_rate`` (R̄).

Differences from the authors' code: the head's hidden width defaults to 512 (theirs 2,048); the bottleneck is the
output (p = 256 as theirs).
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

__all__ = ["SimDINOConfig", "SimDINO", "simdino_loss"]


@dataclass
class SimDINOConfig(SelfSupConfig):
    """SimDINO: cosine alignment of student and teacher views plus γ times the coding rate of the global views."""

    momentum: float = option(0.996, "teacher EMA momentum at the start (rises to 1 on a cosine)", low=0.0,
                             high=1.0)
    eps: float = option(math.sqrt(0.5), "distortion ε of the coding rate, not ε² (default sqrt(0.5): the official "
                        "--eps 0.5 is ε²)", low=1e-100, high=1e100, low_open=True)
    gamma: float = option(0.0, "weight γ of the coding-rate term (0: (p + n)/(p n), n the global batch)", low=0.0,
                          high=1e6)
    rate_features: str = option("mean", "features of the coding-rate term: the mean of student and teacher global "
                                "views, or the student's", choices=("mean", "student"))


def _gamma(p: int, n: Tensor, fixed: float) -> Tensor:
    m = float(n)
    return n.new_tensor(fixed if fixed else (p + m) / (p * m), dtype=torch.float64)


def simdino_loss(teacher: list[Tensor], student: list[Tensor], eps: float, gamma: float = 0.0,
                 rate_features: str = "mean") -> tuple[Tensor, dict]:
    """The loss of one batch (L2-normalised ``teacher`` global views and ``student`` views, each n × p) and its terms
    (``cos``, ``rate``, ``gamma``); the same as the objective's loss of that batch."""
    stats = _statistics(teacher, student, rate_features)
    return _loss(stats, eps, gamma)


def _statistics(teacher: list[Tensor], student: list[Tensor], rate_features: str) -> dict[str, Tensor]:
    cos, pairs = 0.0, 0
    for u, t in enumerate(teacher):
        for v, s in enumerate(student):
            if v == u:
                continue
            cos = cos + (t * s).sum(-1)
            pairs += 1
    grams = []
    for u, t in enumerate(teacher):
        z = 0.5 * (student[u] + t) if rate_features == "mean" else student[u]
        grams.append(z.mT @ z)
    count = teacher[0].new_tensor(float(len(teacher[0])))
    return {"cos": (cos / pairs).sum(), "gram": torch.stack(grams), "count": count}


def _loss(stats: dict[str, Tensor], eps: float, gamma: float) -> tuple[Tensor, dict]:
    n, gram = stats["count"].detach(), stats["gram"]
    p = gram.shape[-1]
    rate = 0.5 * logdet_i_plus(gram, p / (float(n) * eps ** 2)).mean()
    g = _gamma(p, n, gamma)
    cos = stats["cos"] / n
    loss = -cos - g * rate
    return loss, {"cos": cos.detach(), "rate": rate.detach(), "gamma": g.detach()}


@register_objective
class SimDINO(SelfSupervised):
    """SimDINO: alignment of student and EMA-teacher views, and γ times the coding rate against collapse."""

    name = "simdino"
    default_model = "crate_nano"
    Config = SimDINOConfig
    decomposable = False

    def statistics(self, net: nn.Module, inputs: Inputs) -> dict[str, Tensor]:
        student, teacher = net(inputs.x), self.teacher_outputs(inputs.x)
        with full_precision(student[0]):
            student = [F.normalize(s.float(), dim=-1) for s in student]
            teacher = [F.normalize(t.float(), dim=-1) for t in teacher]
            return _statistics(teacher, student, self.config.rate_features)

    def loss_from(self, stats: dict[str, Tensor]):
        loss, terms = _loss(stats, self.config.eps, self.config.gamma)
        return loss, {"cos": terms["cos"], "rate": terms["rate"]}
