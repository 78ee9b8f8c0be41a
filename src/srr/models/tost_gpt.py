"""Causal ToST: the GPT block with token-statistics self-attention over running statistics (REFERENCE §4).

    x = x + γ₁ · TSSA_causal(LN(x));  x = x + γ₂ · MLP(LN(x))

as the authors' language-model code (nanoGPT with TSSA in place of MHSA, LayerScale γ). The attention costs O(N·d)
time and memory (:class:`~srr.operators.causal_tssa.CausalTSSA`); the MLP is the GPT one. ``layer_scale`` is the
initial γ; the authors use 1e-5, srr defaults to ``None`` (no γ, the GPT block with TSSA swapped in) because at CPU
budgets γ = 1e-5 keeps the layers near identity for hundreds of steps: on Tiny Shakespeare, ``tost_gpt_nano`` after
100 steps of batch 16 reached 4.04 bits per byte with γ = 1e-5 and 3.67 without. Per layer 10d² + O(d) parameters
(plus heads × context for the position bias of the membership), so ``tost_gpt_*`` widens ``gpt_*`` by 9/8.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..operators import MLP
from ..operators.causal_tssa import CausalTSSA
from .causal_lm import CausalLM
from .lm_sizes import register_lm_sizes

__all__ = ["ToSTGPT", "ToSTBlock"]


class ToSTBlock(nn.Module):
    """Pre-norm block ``norm1, attn (CausalTSSA), norm2, mlp`` with optional LayerScale ``gamma1``, ``gamma2``."""

    def __init__(self, dim: int, heads: int, dim_head: int, context: int, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, layer_scale: float | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CausalTSSA(dim, heads, dim_head, context, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)
        if layer_scale is None:
            self.gamma1 = self.gamma2 = None
        else:
            self.gamma1 = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: Tensor) -> Tensor:
        a = self.attn(self.norm1(x))
        x = x + (a if self.gamma1 is None else self.gamma1 * a)
        m = self.mlp(self.norm2(x))
        return x + (m if self.gamma2 is None else self.gamma2 * m)


class ToSTGPT(CausalLM):
    """Causal Token Statistics Transformer for language modelling."""

    def __init__(self, vocab_size: int = 256, context: int = 128, dim: int = 144, depth: int = 4, heads: int = 4,
                 dim_head: int | None = None, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 emb_dropout: float = 0.0, layer_scale: float | None = None):
        super().__init__(vocab_size, context, dim, depth, heads, dim_head, emb_dropout)
        self.blocks = nn.ModuleList(ToSTBlock(dim, heads, self.dim_head, context, mlp_ratio, dropout, layer_scale)
                                    for _ in range(depth))
        self.init_weights()


register_lm_sizes("tost_gpt", ToSTGPT, "causal ToST (TSSA over running prefix statistics + MLP 4x)")
