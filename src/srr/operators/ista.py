"""One ISTA step against a square dictionary, the sparsification step of CRATE (REFERENCE §2).

    ISTA(x) = ReLU(x + η·(x D − x Dᵀ D) − η·λ)    (x D means F.linear(x, D.t()))

It is one proximal-gradient step of the LASSO ``min_{z ≥ 0} λ‖z‖₁ + ½‖x − z Dᵀ‖²`` started at z = x: it makes the
tokens sparse in the dictionary D (the −λ‖Z‖₀ term of the sparse rate reduction, with ‖·‖₁ as its surrogate), and
the output is non-negative. The authors' code takes three matrix products; this one takes two, with the same value:
``ReLU(x + η·F.linear(x − F.linear(x, D), D.t()) − ηλ)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ISTA(nn.Module):
    """ISTA step with a learned square dictionary ``weight`` (dim × dim, kaiming-uniform), step η, threshold λ."""

    def __init__(self, dim: int, step_size: float = 0.1, lambd: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.kaiming_uniform_(self.weight)
        self.step_size, self.lambd = step_size, lambd

    def forward(self, x: Tensor) -> Tensor:
        d = self.weight
        residual = x - F.linear(x, d)  # x − x Dᵀ
        return F.relu(x + self.step_size * F.linear(residual, d.t()) - self.step_size * self.lambd)

