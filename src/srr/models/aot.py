"""AoT, the attention-only transformer of unrolled subspace denoising: MSSA layers, no MLP; for images and text.

Each layer is one denoising step of the tokens towards their subspaces, pre-norm, with a residual:

    Z ← Z + η Σ_k U_k U_kᵀ Z softmax(Zᵀ U_k U_kᵀ Z)      i.e.  x = x + MSSA(LN(x)) with the output through U

(in rows: ``x + η · [softmax(w_k w_kᵀ/√p) w_k]_k [U_1 … U_K]ᵀ`` with ``w_k = LN(x) U_k``; MSSA ``output="subspace"``,
``step`` = η). For tokens from a mixture of noisy low-rank Gaussians each layer multiplies their signal-to-noise
ratio by (1 + ητ). Stated choices: the softmax keeps MSSA's scale p^-½ (the formula writes none: it is absorbed in
U); η is a fixed hyper-parameter (default 1), not learned; ``attn_output="learned"`` gives the variant with a free
output matrix (as the authors' CRATE code), which the causal sizes use. Only ``qkv`` = U_[K] and the LayerNorm are
parameters of a layer (d·K·p + 2d), so the CPU image sizes are wider (``aot_nano``, ``aot_micro``) to match
``crate_nano`` / ``crate_micro``; the causal sizes (per layer 2d² + 3d with the learned output) double the width
and take 1.5 times the depth of ``gpt_*``. Keys: ``transformer.layers.{i}.0.{norm,fn}`` as CRATE's.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..operators import MSSA, PreNorm
from ..operators.mssa import OUTPUTS
from ..settings import option
from .base import CausalTransformer, ImageTransformer, SequentialBlock
from .config import BlockConfig, ImageConfig, TextConfig, compose
from .registry import register_model

__all__ = ["AoTConfig", "AoTBlock", "AoT", "AoTGPT"]


@dataclass
class AoTConfig(BlockConfig):
    """AoT's layer: one residual MSSA step."""

    attn_output: str = option("subspace", "output matrix of MSSA (subspace: through U, the AoT layer)",
                              choices=OUTPUTS)
    step: float = option(1.0, "step η of the denoising update", low=-1e6, high=1e6)


class AoTBlock(SequentialBlock):
    """``0`` = PreNorm(MSSA); ``x ↦ x + MSSA(LN(x))`` and nothing after."""

    def __init__(self, c: AoTConfig, causal: bool = False, context: int | None = None):
        super().__init__()
        self.add_module("0", PreNorm(c.dim, MSSA(c.dim, c.heads, c.head_width, c.dropout, causal=causal,
                                                 output=c.attn_output, step=c.step)))

    attention_norm = property(lambda self: self[0].norm)
    attention = property(lambda self: self[0].fn)


class AoT(ImageTransformer):
    """Attention-only transformer for images."""

    Block = AoTBlock
    Config = compose(AoTConfig, ImageConfig, "AoTImageConfig")
    BLOCKS = "transformer.layers"


class AoTGPT(CausalTransformer):
    """Attention-only causal language model (the CRATE code's initialisation)."""

    Block = AoTBlock
    Config = compose(AoTConfig, TextConfig, "AoTTextConfig", attn_output="learned", dim=256, depth=6, heads=8)
    BLOCKS = "transformer.layers"
    GPT2_INIT = False


@register_model
def aot_tiny():
    """AoT (attention only) at CRATE-Tiny's width (ImageNet 224/16)"""
    return AoT.Config(dim=384, depth=12, heads=6)


@register_model
def aot_small():
    """AoT (attention only) at CRATE-S's width (ImageNet 224/16)"""
    return AoT.Config(dim=576, depth=12, heads=12)


@register_model
def aot_base():
    """AoT (attention only) at CRATE-B's width (ImageNet 224/16)"""
    return AoT.Config(dim=768, depth=12, heads=12)


@register_model
def aot_large():
    """AoT (attention only) at CRATE-L's width (ImageNet 224/16)"""
    return AoT.Config(dim=1024, depth=24, heads=16)


@register_model
def aot_nano():
    """CPU: AoT on 8x8 digits, patch 2 (params ~ crate_nano)"""
    return AoT.Config(image_size=8, patch_size=2, num_classes=10, channels=1, dim=160, depth=4, heads=4, pool="mean")


@register_model
def aot_micro():
    """CPU: AoT on 28x28 (MNIST), patch 4 (params ~ crate_micro)"""
    return AoT.Config(image_size=28, patch_size=4, num_classes=10, channels=1, dim=216, depth=6, heads=4)


@register_model
def aot_gpt_nano():
    """causal attention-only transformer (residual causal MSSA, no MLP); context 128, dim 256, depth 6, heads 8"""
    return AoTGPT.Config(context=128, dim=256, depth=6, heads=8)


@register_model
def aot_gpt_small():
    """causal attention-only transformer (residual causal MSSA, no MLP); context 256, dim 768, depth 9, heads 12"""
    return AoTGPT.Config(context=256, dim=768, depth=9, heads=12)


@register_model
def aot_gpt_base():
    """causal attention-only transformer (residual causal MSSA, no MLP); context 1024, dim 1536, depth 18, heads 24"""
    return AoTGPT.Config(context=1024, dim=1536, depth=18, heads=24)
