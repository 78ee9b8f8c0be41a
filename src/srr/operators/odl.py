"""Overcomplete dictionary learning (ODL), the sparsification step of CRATE-α (see docs/operators.md).

With an overcomplete dictionary D ∈ R^{d × Cd} (C = 4), a decoupled decoder D̂ ∈ R^{d × Cd}, step η and threshold λ
(η = λ = 0.1), tokens in rows x (N × d):

    A1  = ReLU(η · x D − η λ)                          one ISTA step from A0 = 0
    A2  = ReLU(A1 − η · (A1 Dᵀ − x) D − η λ)           a second ISTA step from A1
    out = A2 D̂ᵀ

A1 and A2 are two proximal-gradient steps on the non-negative LASSO ``min_{A ≥ 0} λ‖A‖₁ + ½‖x − A Dᵀ‖²``: the codes
A (N × Cd) are sparse in the overcomplete dictionary, the −λ‖Z‖₀ term of the sparse rate reduction with ‖·‖₁ as its
surrogate. The decoder D̂ maps the sparse codes back to the token space (with ``decouple=False`` it is D itself, the
ablation "overcomplete, not decoupled" of the CRATE-α paper). ``x D`` is ``F.linear(x, D.t())``.

Parameter names follow the authors' ``OvercompleteISTABlock``: ``D`` and ``D1`` (= D̂), both (d, C·d),
kaiming-uniform initialised as in their code (fan-in C·d).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["ODL"]


class ODL(nn.Module):
    """Two ISTA steps against an overcomplete dictionary ``D`` and a decoupled decoder ``D1`` (D̂)."""

    def __init__(self, dim: int, overcomplete_ratio: int = 4, step_size: float = 0.1, lambd: float = 0.1,
                 decouple: bool = True):
        super().__init__()
        if dim < 1 or overcomplete_ratio < 1:
            raise ConfigError(f"ODL needs dim >= 1 and overcomplete_ratio >= 1; got {dim} and {overcomplete_ratio}")
        self.step_size, self.lambd, self.decouple = step_size, lambd, decouple
        self.D = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(dim, overcomplete_ratio * dim)))
        if decouple:
            self.D1 = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(dim, overcomplete_ratio * dim)))

    @property
    def decoder(self) -> Tensor:
        """D̂ (``D1``), or D when the decoder is not decoupled."""
        return self.D1 if self.decouple else self.D

    def codes(self, x: Tensor) -> Tensor:
        """The sparse, non-negative codes A2 (…, N, C·d)."""
        eta, shift = self.step_size, self.step_size * self.lambd
        d = self.D
        a1 = F.relu(eta * (x @ d) - shift)
        residual = F.linear(a1, d) - x  # A1 Dᵀ − x
        return F.relu(a1 - eta * (residual @ d) - shift)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.codes(x), self.decoder)  # A2 D̂ᵀ
