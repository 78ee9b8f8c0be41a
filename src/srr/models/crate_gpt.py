"""CRATE-GPT: the CRATE layer made causal, for language modelling (REFERENCE §2 with a causal mask).

    z = x + MSSA_causal(LN(x))     compression of the prefix against the subspaces U_[K] (tied q = k = v)
    x = ISTA(LN(z))                one sparse-coding step against the dictionary D (non-negative output)

Each token is compressed only against the tokens before it. The layers are exactly :class:`CRATETransformer`
(state-dict keys ``transformer.layers.{i}.{0,1}.*`` as the vision CRATE); embeddings, final LayerNorm and the output
head tied to the token embedding come from :class:`~srr.models.causal_lm.CausalLM`. Per layer 3d² + 6d parameters,
so ``crate_gpt_*`` uses twice the width of ``gpt_*`` at the same depth (3·(2d)² = 12d²).
"""
from __future__ import annotations

from torch import Tensor

from .causal_lm import CausalLM
from .crate import CRATETransformer
from .lm_sizes import register_lm_sizes

__all__ = ["CRATEGPT"]


class CRATEGPT(CausalLM):
    """Causal CRATE language model; ``step_size`` (η) and ``lambd`` (λ) are the ISTA step and threshold."""

    GPT2_INIT = False  # the CRATE code keeps the operators' own initialisation

    def __init__(self, vocab_size: int = 256, context: int = 128, dim: int = 256, depth: int = 4, heads: int = 8,
                 dim_head: int | None = None, dropout: float = 0.0, emb_dropout: float = 0.0,
                 step_size: float = 0.1, lambd: float = 0.1):
        super().__init__(vocab_size, context, dim, depth, heads, dim_head, emb_dropout)
        self.transformer = CRATETransformer(dim, depth, heads, self.dim_head, dropout, step_size, lambd, causal=True)
        self.init_weights()

    def encode(self, x: Tensor) -> Tensor:
        return self.transformer(x)

    def trace(self, ids) -> list[dict]:
        """Per layer: ``input``, ``mssa_input``, ``compressed`` and ``output`` (see :class:`CRATETransformer`)."""
        return self.transformer.trace(self.embed(ids))

    def subspaces(self) -> list:
        """Per layer, the subspace bases U (K, d, p) of its tied MSSA projection."""
        from ..measures import heads_from_qkv

        return [heads_from_qkv(attn.fn.qkv.weight, self.heads) for attn, _ in self.transformer.layers]


register_lm_sizes("crate_gpt", CRATEGPT, "CRATE-GPT (causal MSSA + ISTA, tied head)")
