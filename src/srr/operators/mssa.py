"""Multi-head subspace self-attention (MSSA), the compression step of CRATE (see docs/operators.md).

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

``output=`` selects the output matrix applied to the concatenated head outputs A = [A_1 … A_K] (N × K·p), the
compression-step variants of the sparse-rate-reduction study (see docs/operators.md):

    "learned"    A W_outᵀ + b_out             CRATE, the authors' code (``to_out``, a free matrix)
    "subspace"   + s · A [U_1 … U_K]ᵀ          CRATE-C: Σ_k U_k (U_kᵀZ) softmax(·), output through U itself
    "negative"   − s · A [U_1 … U_K]ᵀ          CRATE-N: the sign flipped
    "transpose"  s · A [U_1 … U_K]             CRATE-Transpose: ``F.linear(A, qkv.weight)``; needs K·p = d

The conceptual step αγ² (α the step of the gradient on R^c, γ = p/(N ε²)) is one fixed scalar ``step`` = s
(default 1, so CRATE-C is CRATE with ``to_out`` replaced by U and no bias). It is a hyper-parameter, not learned:
a learned scalar could change sign during training, and CRATE-N would no longer differ from CRATE-C. The softmax
keeps the scale p^-½ of the authors' code in every variant, so the variants differ in the output matrix only.
Only "learned" has parameters beyond ``qkv``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..measures import heads_from_qkv
from .heads import orthonormal_heads
from .hooks import HookPoint

OUTPUTS = ("learned", "subspace", "negative", "transpose")


class MSSA(nn.Module):
    """Multi-head subspace self-attention with the tied projection ``qkv`` = U_[K] (no bias).

    Parameter names follow the authors' code: ``qkv.weight`` (heads·dim_head × dim) and ``to_out.0.{weight,bias}``.
    ``causal=True`` masks future tokens (for language models). ``output`` and ``step`` select the variant (see the
    module docstring); ``to_out`` exists only for ``output="learned"``.
    """

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, dropout: float = 0.0, causal: bool = False,
                 out_bias: bool = True, output: str = "learned", step: float = 1.0):
        super().__init__()
        if output not in OUTPUTS:
            raise ConfigError(f"MSSA output must be one of {', '.join(OUTPUTS)}; got {output!r}")
        if output == "transpose" and heads * dim_head != dim:
            raise ConfigError(
                f"output='transpose' (CRATE-Transpose) needs heads*dim_head == dim; got {heads}*{dim_head} != {dim}")
        self.heads, self.dim_head, self.causal = heads, dim_head, causal
        self.output, self.step = output, float(step)
        self.scale = dim_head**-0.5
        self.qkv = nn.Linear(dim, heads * dim_head, bias=False)
        self.hook_heads = HookPoint()  # the head outputs concatenated (B, N, K·p), before the output matrix
        if output == "learned":
            self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim, bias=out_bias), nn.Dropout(dropout))
        else:
            self.out_dropout = nn.Dropout(dropout)

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

    def subspaces(self) -> Tensor:
        """The bases U (K, d, p) of the tied projection: rows of head k of ``qkv.weight`` are U_kᵀ."""
        return heads_from_qkv(self.qkv.weight, self.heads)

    def head_bases(self, which: str = "value") -> Tensor:
        """An orthonormal basis (K, d, p) of every head's subspace (query, key and value are all U_k)."""
        return orthonormal_heads(self.qkv.weight, self.heads)

    def mix(self, x: Tensor) -> Tensor:
        """Attention outputs of all heads concatenated, before ``to_out``: (B, N, K·p)."""
        w = self.project(x)
        out = F.scaled_dot_product_attention(w, w, w, is_causal=self.causal, scale=self.scale)
        return out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.heads * self.dim_head)

    def forward(self, x: Tensor) -> Tensor:
        mixed = self.hook_heads(self.mix(x))
        if self.output == "learned":
            return self.to_out(mixed)
        u = self.qkv.weight  # (K·p, d): A @ u = A [U_1 … U_K]ᵀ;  A @ u.T = A [U_1 … U_K] (CRATE-Transpose)
        signed = u * (-self.step if self.output == "negative" else self.step)
        return self.out_dropout(mixed @ signed.t() if self.output == "transpose" else mixed @ signed)
