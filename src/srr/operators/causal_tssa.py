"""Causal token-statistics self-attention (TSSA) for language models: ToST with running statistics (REFERENCE §4).

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

The per-head pieces (:func:`head_membership`, :func:`second_moment_response`) are written so that the non-causal
operator can share them. Numerical guards: squared norms are clamped at ``1e-12`` and Σ Π at ``+1e-8`` (as the
authors' code), so a prefix of zero vectors gives zeros, never NaN.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError

__all__ = ["CausalTSSA", "head_membership", "second_moment_response", "SQNORM_FLOOR", "PI_FLOOR"]

SQNORM_FLOOR = 1e-12
PI_FLOOR = 1e-8


def head_membership(normed_sq_sum: Tensor, temperature: Tensor) -> Tensor:
    """``Π = softmax over heads of (τ_k · Σ_coords ŵ²)``.

    ``normed_sq_sum`` is (B, K, N) (already summed over the p coordinates, plus any bias), ``temperature`` (K, 1).
    Returns Π of shape (B, K, N); every token's memberships sum to 1 over the K heads.
    """
    return torch.softmax(normed_sq_sum * temperature, dim=1)


def second_moment_response(w: Tensor, pi: Tensor, second_moment: Tensor) -> Tensor:
    """``−(Π · w) / (1 + s)``: the TSSA output of every head, (B, K, N, p), from w (B, K, N, p), Π (B, K, N) and the
    per-coordinate second moment s (B, K, N, p) or (B, K, 1, p)."""
    return -(w * pi.unsqueeze(-1)) / (1.0 + second_moment)


class CausalTSSA(nn.Module):
    """Causal TSSA: ``qkv`` (K·p × d, no bias) = U_[K], ``temp`` τ (K × 1), ``denom_bias`` b (K × context × 1) and
    ``to_out.0`` (d × K·p, with bias). Input (B, N, d) with N ≤ ``context``."""

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, context: int = 1024, dropout: float = 0.0):
        super().__init__()
        if min(dim, heads, dim_head, context) < 1:
            raise ConfigError(f"CausalTSSA sizes must be positive: dim {dim}, heads {heads}, dim_head {dim_head}, "
                              f"context {context}")
        self.heads, self.dim_head, self.context = heads, dim_head, context
        self.qkv = nn.Linear(dim, heads * dim_head, bias=False)
        self.temp = nn.Parameter(torch.ones(heads, 1))
        self.denom_bias = nn.Parameter(torch.zeros(heads, context, 1))
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))

    def project(self, x: Tensor) -> Tensor:
        """Per-head coordinates ``w_k = x U_k``, shape (B, K, N, p)."""
        b, n, _ = x.shape
        return self.qkv(x).view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def statistics(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Membership Π (B, K, N) and running second moment s (B, K, N, p) of the projected tokens w."""
        n = w.shape[-2]
        if n > self.context:
            raise DataError(f"CausalTSSA was built for at most {self.context} tokens, got {n}")
        w_sq = w * w
        normed_sq = w_sq / w_sq.cumsum(dim=-2).clamp_min(SQNORM_FLOOR)
        pi = head_membership(normed_sq.sum(dim=-1) + self.denom_bias[:, :n, 0], self.temp)
        weighted = (w_sq * pi.unsqueeze(-1)).cumsum(dim=-2)
        s = weighted / (pi.cumsum(dim=-1) + PI_FLOOR).unsqueeze(-1)
        return pi, s

    def mix(self, x: Tensor) -> Tensor:
        """Outputs of all heads concatenated, before ``to_out``: (B, N, K·p)."""
        w = self.project(x)
        pi, s = self.statistics(w)
        out = second_moment_response(w, pi, s)
        return out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.heads * self.dim_head)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_out(self.mix(x))
