"""Standard multi-head self-attention (the engineered transformer's; the baseline for white-box attention).

    Q, K, V = x W_qᵀ + b_q, x W_kᵀ + b_k, x W_vᵀ + b_v;  MHSA(x) = [softmax(Q_h K_hᵀ / √p) V_h]_h W_oᵀ + b_o

Unlike MSSA, the three projections are free (not tied to one subspace basis), so the operator optimises no stated
objective. The product runs through PyTorch's fused ``scaled_dot_product_attention``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .heads import orthonormal_heads
from .hooks import HookPoint


class MultiHeadSelfAttention(nn.Module):
    """Pre-norm-ready MHSA: ``qkv`` (3·heads·dim_head × dim, with bias by default) and ``proj`` (dim × heads·dim_head)."""

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, qkv_bias: bool = True, dropout: float = 0.0,
                 causal: bool = False):
        super().__init__()
        self.heads, self.dim_head, self.causal = heads, dim_head, causal
        self.scale = dim_head**-0.5
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=qkv_bias)
        self.proj = nn.Linear(heads * dim_head, dim)
        self.dropout = nn.Dropout(dropout)
        self.hook_heads = HookPoint()  # the head outputs concatenated (B, N, K·p), before ``proj``

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        return q, k, v

    def subspaces(self) -> None:
        """None: queries, keys and values have separate projections (no tied subspace basis)."""
        return None

    def head_bases(self, which: str = "value") -> Tensor:
        """An orthonormal basis (K, d, p) of the row space of every head's ``which`` projection ("query", "key" or
        "value"): the subspace of the residual stream that the head reads for that role."""
        index = {"query": 0, "key": 1, "value": 2}.get(which)
        if index is None:
            raise ConfigError(f"which must be query, key or value, got {which!r}")
        rows = self.heads * self.dim_head
        return orthonormal_heads(self.qkv.weight[index * rows:(index + 1) * rows], self.heads)

    def attention(self, x: Tensor) -> Tensor:
        """The softmax matrices of every head, shape (B, heads, N, N)."""
        q, k, _ = self._qkv(x)
        logits = (q @ k.transpose(-2, -1)) * self.scale
        if self.causal:
            n = x.shape[1]
            logits = logits.masked_fill(torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        return logits.softmax(-1)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._qkv(x)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale)
        b, n = x.shape[:2]
        heads = self.hook_heads(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))
        return self.dropout(self.proj(heads))
