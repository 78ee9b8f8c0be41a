"""Causal token-statistics self-attention (TSSA) for language models: ToST with running statistics (docs/operators.md).

Per head k, with ``w = x U_k`` (N × p; one bias-free Linear ``qkv`` for all heads) and a token t that may only see
the prefix s ≤ t, every statistic of the non-causal TSSA becomes a running (cumulative) one:

    ŵ²_t   = w_t² / Σ_{s≤t} w_s²                (each coordinate normalised over the prefix, then squared)
    Π_t    = softmax_k( τ_k · (Σ_coords ŵ²_t + b_{k,t}) )   (membership of token t in head k; τ init 1, b init 0)
    s_t    = Σ_{s≤t} Π_s w_s² / Σ_{s≤t} Π_s     (per-coordinate second moment of the prefix, weighted by Π)
    out_t  = −(Π_t · w_t) / (1 + s_t)           (all products and quotients per coordinate)

followed by the output projection ``to_out``. The position bias ``b`` (``denom_bias``, heads × context) is the
authors' language-model code; it lets the membership compensate for the prefix length, since Σ ŵ²_0 = p always.
Without the running sums (statistics over all N tokens, no ``b``) this is the vision TSSA.

TSSA is one gradient step on a variational upper bound of the compression term R^c(Z | U_[K]) in which each head's
log-determinant is replaced by the per-coordinate second moments of its projected tokens, so the cost is linear in N:
every quantity above is a cumulative sum over tokens, O(N·d) time and memory, and no N × N tensor is formed.

It shares the non-causal operator's parameters (:class:`~srr.operators.tssa.TSSA`) and its update step.
Numerical guards: squared norms are clamped at ``1e-12`` and Σ Π gets ``+1e-8`` (as the authors' code), so a prefix of
zero vectors gives zeros, never NaN.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from .tssa import MOMENT_EPS, TSSA, statistics_step

__all__ = ["CausalTSSA"]

SQNORM_FLOOR = 1e-12


class CausalTSSA(TSSA):
    """Causal TSSA: the parameters of :class:`TSSA` (``qkv`` = U_[K] without bias, ``temp`` τ, ``to_out.0``) plus the
    position bias ``denom_bias`` b (K × context × 1). Input (B, N, d) with N ≤ ``context``."""

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, context: int = 1024, dropout: float = 0.0,
                 qkv_bias: bool = False):
        if context is None or context < 1:
            raise ConfigError(f"CausalTSSA needs a positive context, got {context}")
        super().__init__(dim, heads, dim_head, dropout, qkv_bias=qkv_bias)
        self.context = context
        self.denom_bias = nn.Parameter(torch.zeros(heads, context, 1))

    def statistics(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Membership Π (B, K, N) and running second moment s (B, K, N, p) of the projected tokens w."""
        n = w.shape[-2]
        if n > self.context:
            raise DataError(f"CausalTSSA was built for at most {self.context} tokens, got {n}")
        w_sq = w * w
        normed_sq = w_sq / w_sq.cumsum(dim=-2).clamp_min(SQNORM_FLOOR)
        pi = torch.softmax((normed_sq.sum(dim=-1) + self.denom_bias[:, :n, 0]) * self.temp, dim=1)  # over heads
        weighted = (w_sq * pi.unsqueeze(-1)).cumsum(dim=-2)
        s = weighted / (pi.cumsum(dim=-1) + MOMENT_EPS).unsqueeze(-1)
        return pi, s

    def mix(self, x: Tensor) -> Tensor:
        """Outputs of all heads concatenated, before ``to_out``: (B, N, K·p)."""
        w = self.project(x)
        pi, s = self.statistics(w)
        out = statistics_step(w, pi, s)
        return out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.heads * self.dim_head)

    def memberships(self, x: Tensor) -> Tensor:
        """Π (B, K, N) from the prefix statistics of every token."""
        return self.statistics(self.project(x))[0]
