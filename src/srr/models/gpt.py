"""The GPT baseline for the causal white-box models: pre-norm blocks of causal MHSA and a GELU MLP of ratio 4.

    x = x + MHSA_causal(LN(x));  x = x + MLP(LN(x))

The engineered transformer the white-box language models are compared against: free query, key and value
projections (with bias) and an MLP, so it optimises no stated objective. Embeddings, final LayerNorm, tied head and
initialisation are those of every srr language model (:class:`~srr.models.causal_lm.CausalLM`). Per layer
12d² + 13d parameters.
"""
from __future__ import annotations

from torch import nn

from .causal_lm import CausalLM
from .lm_sizes import register_lm_sizes
from .vit import ViTBlock

__all__ = ["GPT"]


class GPT(CausalLM):
    """GPT-2-style causal language model; ``blocks[i]`` is a :class:`~srr.models.vit.ViTBlock` with ``causal=True``."""

    def __init__(self, vocab_size: int = 256, context: int = 128, dim: int = 128, depth: int = 4, heads: int = 4,
                 dim_head: int | None = None, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 emb_dropout: float = 0.0):
        super().__init__(vocab_size, context, dim, depth, heads, dim_head, emb_dropout)
        self.blocks = nn.ModuleList(ViTBlock(dim, heads, self.dim_head, mlp_ratio, dropout, causal=True)
                                    for _ in range(depth))
        self.init_weights()


register_lm_sizes("gpt", GPT, "GPT baseline (causal MHSA + MLP 4x, GELU)")
