"""Token-statistics self-attention (TSSA), the attention of ToST (docs/operators.md), linear in the number of tokens.

Per head k, with the tied projection ``w_k = x U_k`` (N × p; one Linear ``qkv`` = U_[K] for all heads) and a learnable
temperature τ_k (initialised to 1):

    ŵ_k      = w_k / ‖w_k‖ over the tokens          every coordinate L2-normalised over the N tokens
    Π[k, i]  = softmax_k( τ_k · Σ_j ŵ_k[i, j]² )     soft membership of token i in head k (softmax over heads)
    s_k[j]   = Σ_i Π[k, i] w_k[i, j]² / (Σ_i Π[k, i] + 1e-8)      Π-weighted second moment of coordinate j
    out_k    = −(Π[k, :] ⊙ w_k) / (1 + s_k)         broadcast over tokens and coordinates
    TSSA(x)  = [out_1, …, out_K] W_outᵀ + b_out

It is a gradient step on the variational compression term of ToST: R^c of the tokens against the subspaces U_[K],
with the log-determinant replaced by its upper bound Σ_j log(1 + s_k[j]) on the diagonal of the projected (Π-weighted)
second moments. The derivative of log(1 + s) is 1/(1 + s): coordinates with large energy in a head are shrunk least,
weak ones most, which lowers R^c (the compression term of the (sparse) rate reduction). As in CRATE, the output
matrix [U_1 … U_K] of the derivation is replaced by a free Linear ``to_out`` (with bias), as in the authors' code.
Every statistic is a sum over tokens: cost O(N·d) time and memory, no N × N tensor.

Checked against the official code (``RobinWu218/ToST``, ``tost_vision/tost.py``, ``AttentionTSSA``): the same
formula; differences and details:

* the official code adds 1e-8 to Σ_i Π before dividing (kept here); the normalisation is ``F.normalize`` over the
  tokens (L2, ε = 1e-12; kept);
* its vision models call it with ``qkv_bias=True`` (a bias in U_[K]); here ``qkv_bias`` defaults to False so that
  ``qkv`` is the subspace basis U_[K] (+dim parameters per layer otherwise);
* the official code applies attention dropout to 1/(1 + s); here ``dropout`` acts after ``to_out`` only.

The pieces are functions of per-head coordinates w (B, K, N, p) so that a causal version can reuse them with running
statistics over the prefix: :func:`head_memberships` (Π from normalised coordinates), :func:`second_moments`
(s from Π and w) and :func:`statistics_step` (the update).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..measures import heads_from_qkv
from .heads import orthonormal_heads
from .hooks import HookPoint

__all__ = ["TSSA", "normalize_over_tokens", "head_memberships", "second_moments", "statistics_step"]

MOMENT_EPS = 1e-8  # added to Σ_i Π (official code)


def normalize_over_tokens(w: Tensor) -> Tensor:
    """ŵ: every coordinate of w (…, N, p) divided by its L2 norm over the N tokens (``F.normalize(w, dim=-2)``)."""
    return F.normalize(w, dim=-2)


def head_memberships(w_normed: Tensor, temperature: Tensor) -> Tensor:
    """Π (B, K, N): ``softmax over heads of τ_k · Σ_j ŵ_k[i, j]²``; ``temperature`` has shape (K, 1)."""
    return torch.softmax(w_normed.square().sum(-1) * temperature, dim=-2)  # (B, K, N): over K


def second_moments(w: Tensor, pi: Tensor) -> Tensor:
    """s (B, K, 1, p): ``Σ_i Π[k, i] w[k, i, j]² / (Σ_i Π[k, i] + 1e-8)`` — one number per head and coordinate."""
    weights = pi / (pi.sum(-1, keepdim=True) + MOMENT_EPS)
    return weights.unsqueeze(-2) @ w.square()


def statistics_step(w: Tensor, pi: Tensor, s: Tensor) -> Tensor:
    """The TSSA update ``−(Π ⊙ w) / (1 + s)``, shape of w (B, K, N, p)."""
    return -(w * pi.unsqueeze(-1)) / (1.0 + s)


class TSSA(nn.Module):
    """Token-statistics self-attention: ``qkv`` (K·p × d) = U_[K], ``temp`` (K, 1) = τ, ``to_out.0`` (d × K·p + bias).

    Parameter names follow the official ``AttentionTSSA``. Non-causal (every statistic is over all N tokens).
    """

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, dropout: float = 0.0, qkv_bias: bool = False):
        super().__init__()
        if min(dim, heads, dim_head) < 1:
            raise ConfigError(f"TSSA needs positive dim, heads and dim_head; got {dim}, {heads}, {dim_head}")
        self.heads, self.dim_head = heads, dim_head
        self.qkv = nn.Linear(dim, heads * dim_head, bias=qkv_bias)
        self.temp = nn.Parameter(torch.ones(heads, 1))
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))
        self.hook_heads = HookPoint()  # the head outputs concatenated (B, N, K·p), before ``to_out``

    def project(self, x: Tensor) -> Tensor:
        """Per-head coordinates ``w_k = x U_k``, shape (B, K, N, p)."""
        b, n, _ = x.shape
        return self.qkv(x).view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def subspaces(self) -> Tensor:
        """The bases U (K, d, p) of the tied projection: rows of head k of ``qkv.weight`` are U_kᵀ."""
        return heads_from_qkv(self.qkv.weight, self.heads)

    def head_bases(self, which: str = "value") -> Tensor:
        """An orthonormal basis (K, d, p) of every head's subspace (one projection serves all roles)."""
        return orthonormal_heads(self.qkv.weight, self.heads)

    def memberships(self, x: Tensor) -> Tensor:
        """Π (B, K, N): the soft assignment of every token to the heads (sums to 1 over heads)."""
        return head_memberships(normalize_over_tokens(self.project(x)), self.temp)

    def mix(self, x: Tensor) -> Tensor:
        """The head outputs concatenated, before ``to_out``: (B, N, K·p)."""
        w = self.project(x)
        pi = head_memberships(normalize_over_tokens(w), self.temp)
        out = statistics_step(w, pi, second_moments(w, pi))
        return out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.heads * self.dim_head)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_out(self.hook_heads(self.mix(x)))
