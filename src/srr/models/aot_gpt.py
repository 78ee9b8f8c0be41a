"""Causal attention-only transformer (AoT, REFERENCE §5): a stack of residual causal MSSA steps, no MLP.

    x = x + MSSA_causal(LN(x))      i.e. Z ← Z + η Σ_k U_k U_kᵀ Z softmax(Zᵀ U_k U_kᵀ Z), masked to the prefix

Every layer is a compression step on R^c(Z | U_[K]) of the prefix (denoising tokens towards their subspaces); there is
no sparse-coding or feed-forward step. Per layer 2d² + 3d parameters, so ``aot_gpt_*`` uses twice the width and 1.5
times the depth of ``gpt_*`` (2·(2d)²·1.5 = 12d²).
"""
from __future__ import annotations

from torch import Tensor, nn

from ..operators import MSSA, PreNorm
from .causal_lm import CausalLM
from .lm_sizes import register_lm_sizes

__all__ = ["AoTGPT"]


class AoTGPT(CausalLM):
    """Attention-only causal language model; ``blocks[i]`` is ``PreNorm(MSSA(causal=True))`` with a residual."""

    GPT2_INIT = False  # the CRATE code keeps the operators' own initialisation

    def __init__(self, vocab_size: int = 256, context: int = 128, dim: int = 256, depth: int = 6, heads: int = 8,
                 dim_head: int | None = None, dropout: float = 0.0, emb_dropout: float = 0.0):
        super().__init__(vocab_size, context, dim, depth, heads, dim_head, emb_dropout)
        self.blocks = nn.ModuleList(PreNorm(dim, MSSA(dim, heads, self.dim_head, dropout, causal=True))
                                    for _ in range(depth))
        self.init_weights()

    def encode(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x

    def subspaces(self) -> list:
        """Per layer, the subspace bases U (K, d, p) of its tied MSSA projection."""
        from ..measures import heads_from_qkv

        return [heads_from_qkv(block.fn.qkv.weight, self.heads) for block in self.blocks]


register_lm_sizes("aot_gpt", AoTGPT, "causal attention-only transformer (residual causal MSSA, no MLP)")
