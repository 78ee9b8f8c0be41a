"""DINO: self-distillation with no labels (Caron et al., 2021), as a plug-in of the training engine.

Student and EMA teacher (:mod:`srr.objectives.selfsup`) end their projection head in a weight-normalised Linear
layer to K = ``--prototypes`` outputs: the bottleneck output is L2-normalised and multiplied by the matrix whose rows
are the prototypes divided by their norms (``weight_norm`` with the gain fixed at 1). With teacher outputs t_u
(u = 1, 2, the global views) and student outputs s_v (v = 1 … 2 + M, every view), the loss of an image is

    L = 1/P · Σ_u Σ_{v ≠ u} Σ_k − softmax((t_u − c)/τ_t)_k · log_softmax(s_v/τ_s)_k,    P = 2(2 + M) − 2,

averaged over the images of the global batch (pairs of the same view are skipped). The centre c (K) is an EMA of the
teacher's outputs: after each step ``c ← λ c + (1 − λ) mean(t)``, the mean over both global views of every image of
the global batch (λ = ``--centre-momentum``), starting at 0; it is kept in the objective's state (checkpoints).
``--no-centering`` drops c (c = 0 throughout); ``--no-sharpening`` uses τ_t = τ_s. The teacher temperature is
constant (no warm-up). Logged terms: ``train_cross_entropy`` (the loss) and ``train_teacher_entropy`` (the mean
entropy of the teacher's distributions: near 0 when the teacher collapses onto one prototype, near log K when it
is uniform).

Differences from the authors' code: K defaults to 1,024 (CPU scale; theirs 65,536), the head's hidden width to 512
(theirs 2,048), no teacher-temperature warm-up, no gradient freezing of the last layer in the first epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..settings import option
from .base import Inputs, register_objective
from .selfsup import ProjectionHead, SelfSupConfig, SelfSupervised, full_precision

__all__ = ["DINOConfig", "DINO", "PrototypeHead", "dino_item_losses"]


@dataclass
class DINOConfig(SelfSupConfig):
    """DINO: cross-entropy between the centred, sharpened teacher and the student over K prototypes."""

    momentum: float = option(0.996, "teacher EMA momentum at the start (rises to 1 on a cosine)", low=0.0,
                             high=1.0)
    prototypes: int = option(1024, "K, outputs of the weight-normalised last layer", low=2, high=1 << 20)
    student_temp: float = option(0.1, "student temperature τ_s", low=0.0, high=100.0, low_open=True)
    teacher_temp: float = option(0.04, "teacher temperature τ_t", low=0.0, high=100.0, low_open=True)
    centre_momentum: float = option(0.9, "EMA momentum of the centre", low=0.0, high=1.0)
    centering: bool = option(True, "subtract the centre from the teacher's outputs")
    sharpening: bool = option(True, "teacher temperature τ_t (off: τ_t = τ_s)")


class PrototypeHead(nn.Module):
    """MLP → L2-normalise → Linear with unit-norm rows (the prototypes)."""

    def __init__(self, mlp: nn.Module, bottleneck: int, prototypes: int):
        super().__init__()
        self.mlp = mlp
        self.prototypes = nn.Parameter(torch.empty(prototypes, bottleneck))
        nn.init.trunc_normal_(self.prototypes, std=0.02)

    def forward(self, z: Tensor) -> Tensor:
        return F.linear(F.normalize(self.mlp(z), dim=-1), F.normalize(self.prototypes, dim=-1))


def dino_item_losses(teacher: list[Tensor], student: list[Tensor], centre: Tensor, teacher_temp: float,
                     student_temp: float) -> Tensor:
    """Per image, the mean over pairs (u, v ≠ u) of the cross-entropy of ``student[v]`` to ``teacher[u]``."""
    q = [F.softmax((t.float() - centre) / teacher_temp, dim=-1) for t in teacher]
    logp = [F.log_softmax(s.float() / student_temp, dim=-1) for s in student]
    total, pairs = 0.0, 0
    for u, qu in enumerate(q):
        for v, lv in enumerate(logp):
            if v == u:
                continue
            total = total - (qu * lv).sum(-1)
            pairs += 1
    return total / pairs


@register_objective
class DINO(SelfSupervised):
    """DINO: the student matches the centred, sharpened EMA teacher over K prototypes."""

    name = "dino"
    default_model = "vit_nano"
    Config = DINOConfig
    decomposable = False

    def build_head(self) -> nn.Module:
        c = self.config
        mlp = ProjectionHead(self.feature_dim, c.head_hidden, c.head_dim, c.head_layers)
        return PrototypeHead(mlp, c.head_dim, c.prototypes)

    def network(self, model: nn.Module) -> nn.Module:
        net = super().network(model)
        self.centre = torch.zeros(self.config.prototypes, device=self.device)
        self.pending_centre = None
        return net

    def statistics(self, net: nn.Module, inputs: Inputs) -> dict[str, Tensor]:
        student, teacher = net(inputs.x), self.teacher_outputs(inputs.x)
        with full_precision(student[0]):
            return self._statistics(inputs, [s.float() for s in student], [t.float() for t in teacher])

    def _statistics(self, inputs: Inputs, student: list[Tensor], teacher: list[Tensor]) -> dict[str, Tensor]:
        c = self.config
        tau_t = c.teacher_temp if c.sharpening else c.student_temp
        centre = self.centre if c.centering else torch.zeros_like(self.centre)
        per_item = dino_item_losses(teacher, student, centre, tau_t, c.student_temp)
        with torch.no_grad():
            q = F.softmax((torch.cat(teacher) - centre) / tau_t, dim=-1)
            entropy = -(q * q.clamp_min(1e-30).log()).sum(-1).sum() / len(teacher)
        count = torch.tensor(float(inputs.count), device=per_item.device)
        return {"ce": per_item.sum(), "count": count, "teacher_sum": torch.cat(teacher).sum(0).detach(),
                "teacher_entropy": entropy}

    def loss_from(self, stats: dict[str, Tensor]):
        n = stats["count"].detach()
        self.pending_centre = (stats["teacher_sum"].detach() / (2 * n)).to(self.centre.device)
        loss = stats["ce"] / n
        return loss, {"cross_entropy": loss.detach(), "teacher_entropy": stats["teacher_entropy"].detach() / n}

    @torch.no_grad()
    def after_step(self, net: nn.Module, step: int, total: int) -> None:
        super().after_step(net, step, total)
        if self.pending_centre is not None:
            lam = self.config.centre_momentum
            self.centre.mul_(lam).add_(self.pending_centre, alpha=1.0 - lam)
            self.pending_centre = None

    def state_dict(self) -> dict:
        return {**super().state_dict(), "centre": self.centre.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "centre" in state:
            self.centre.copy_(state["centre"].to(self.centre.device))
