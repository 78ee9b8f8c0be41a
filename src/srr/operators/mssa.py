"""Multi-head subspace self-attention (MSSA), the compression step of CRATE (REFERENCE §2).

With one tied projection per head, ``w_k = x U_k`` (N × p) serves as query, key and value:

    MSSA(x) = [softmax(w_1 w_1ᵀ / √p) w_1, …, softmax(w_K w_Kᵀ / √p) w_K] W_outᵀ + b_out

It is a gradient step on the compressed rate R^c(Z | U_[K]) of the tokens against the subspaces U_[K]: each token is
pulled towards the tokens that share its subspace, which lowers R^c (the compression term of the sparse rate
reduction). ``U_[K]`` is ``qkv.weight`` (K·p × d, rows of head k are U_kᵀ); the output matrix is the free ``to_out``
of the authors' code (the conceptual CRATE-C uses U itself). The product runs through PyTorch's fused
``scaled_dot_product_attention``, which on CPU dispatches to its flash kernel (``benchmarks/mssa_kernels.py`` checks
this and times it against the explicit softmax); the tied projection is passed once as Q, K and V, and the kernel's
output layout (B, N, K, p) makes the final head concatenation a free reshape. :meth:`attention` returns the explicit
softmax matrices for inspection.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MSSA(nn.Module):
    """Multi-head subspace self-attention with the tied projection ``qkv`` = U_[K] (no bias).

    Parameter names follow the authors' code: ``qkv.weight`` (heads·dim_head × dim) and ``to_out.0.{weight,bias}``.
    ``causal=True`` masks future tokens (for language models).
    """

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, dropout: float = 0.0, causal: bool = False,
                 out_bias: bool = True):
        super().__init__()
        self.heads, self.dim_head, self.causal = heads, dim_head, causal
        self.scale = dim_head**-0.5
        self.qkv = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim, bias=out_bias), nn.Dropout(dropout))

    def project(self, x: Tensor) -> Tensor:
        """Per-head coordinates ``w_k = x U_k``, shape (B, K, N, p)."""
        b, n, _ = x.shape
        return self.qkv(x).view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def attention(self, x: Tensor) -> Tensor:
        """The softmax matrices ``softmax(w_k w_kᵀ / √p)`` of every head, shape (B, K, N, N)."""
        w = self.project(x)
        logits = (w @ w.transpose(-2, -1)) * self.scale
        if self.causal:
            n = x.shape[1]
            mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
            logits = logits.masked_fill(mask, float("-inf"))
        return logits.softmax(dim=-1)

    def mix(self, x: Tensor) -> Tensor:
        """Attention outputs of all heads concatenated, before ``to_out``: (B, N, K·p)."""
        w = self.project(x)
        out = F.scaled_dot_product_attention(w, w, w, is_causal=self.causal, scale=self.scale)
        return out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.heads * self.dim_head)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_out(self.mix(x))
