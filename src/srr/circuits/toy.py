"""Attention-only language models for circuit studies: untied (GPT-style) or tied symmetric (MSSA) attention.

A layer is ``x ← x + Attn(norm(x))``, nothing else, so every path from the embedding to the logits is a sum of
products of head circuits (Elhage et al.'s setting). ``attention`` chooses the operator:

    untied   MHSA without query/key/value biases: W_QK = W_Qᵀ W_K free, asymmetric in general
    tied     MSSA with a learned output (the causal AoT layer): W_Q = W_K = W_V = U_hᵀ, W_QK = U_h U_hᵀ symmetric PSD

Both have a learned output matrix with bias, the same front end (token and position embeddings, a final LayerNorm,
the unembedding tied to the embedding) and the GPT-2 initialisation, so they differ in the tying alone.
``norm=False`` makes every LayerNorm the identity (for circuits set by hand). These models are not in the registry:
they are the instruments of the induction study (``benchmarks/induction.py``), built with
``AttentionOnlyGPT(AttentionOnlyGPT.Config(...))``.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..models.base import Block, CausalTransformer
from ..models.config import BlockConfig, TextConfig, compose
from ..operators import MSSA, MultiHeadSelfAttention
from ..settings import option

__all__ = ["AttentionOnlyConfig", "AttentionOnlyBlock", "AttentionOnlyGPT", "ATTENTIONS"]

ATTENTIONS = ("untied", "tied")


@dataclass
class AttentionOnlyConfig(BlockConfig):
    """An attention-only layer."""

    attention: str = option("untied", "untied (MHSA) or tied symmetric (MSSA) attention", choices=ATTENTIONS)
    norm: bool = option(True, "pre-norm LayerNorms (false: identities, for circuits set by hand)")


class AttentionOnlyBlock(Block):
    """``norm`` then ``attn``; ``x ↦ x + attn(norm(x))``."""

    def __init__(self, c: AttentionOnlyConfig, causal: bool = True, context: int | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(c.dim) if c.norm else nn.Identity()
        if c.attention == "untied":
            self.attn = MultiHeadSelfAttention(c.dim, c.heads, c.head_width, qkv_bias=False, causal=causal)
        else:
            self.attn = MSSA(c.dim, c.heads, c.head_width, causal=causal)

    attention_norm = property(lambda self: self.norm)
    attention = property(lambda self: self.attn)


class AttentionOnlyGPT(CausalTransformer):
    """Attention-only causal language model (see the module docstring)."""

    Block = AttentionOnlyBlock
    Config = compose(AttentionOnlyConfig, TextConfig, "AttentionOnlyTextConfig", dim=64, depth=2, heads=4)

    def build_front(self, config) -> None:
        super().build_front(config)
        if not config.norm:
            self.ln_f = nn.Identity()
