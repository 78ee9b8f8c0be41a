"""ToST, the Token Statistics Transformer: TSSA in place of self-attention, linear in the number of tokens; for images
and, with running statistics over the prefix, for text.

Each block, pre-norm with residuals and (optional) layer scale γ as the official code:

    x = x + γ₁ · TSSA(LN(x))      compression against U_[K] through token statistics (O(N·d))
    x = x + γ₂ · MLP(LN(x))       GELU MLP of ratio 4, as the official ToST (which keeps XCiT's MLP)

The causal block is the same with :class:`~srr.operators.causal_tssa.CausalTSSA` (statistics over the prefix, a
position bias of the membership); per layer 10d² + O(d) parameters, so ``tost_gpt_*`` widens ``gpt_*`` by 9/8.
``layer_scale`` is the initial γ (``None``: no γ). The language sizes use none: at CPU budgets γ = 1e-5 keeps the
layers near identity for hundreds of steps (``tost_gpt_nano`` after 100 steps of batch 16 reached 4.04 bits per
byte with γ = 1e-5 and 3.67 without).

Differences from the official vision code (``tost_vision/tost.py``, an XCiT derivative), stated: the patch
embedding, CLS token, learned positional embedding and head are the shared image front end (officially: a 4-layer
convolutional patch embedding with batch norm, Fourier positional encoding, the CLS token appended after the blocks
and 2 class-attention blocks before the head); the read-out is the mean of the tokens (``pool="mean"``): TSSA mixes
tokens only through global statistics, so a CLS token learns little from the patches; LayerNorm ε = 1e-5 (theirs
1e-6); ``qkv`` without bias (theirs with). Parameter counts therefore differ from the published ones: ``tost_tiny``
has 4,832,344 and ``tost_small`` 18,509,512 against 5.8M and 22.6M. Counting the official architecture the same way
gives 5,769,328 and 22,589,944 (the published figures): its two class-attention blocks hold 890,496 / 3,550,464
parameters and its convolutional stem 219,096 / 873,648 (against 149,568 / 297,600 here for LN, Linear, LN).
Sizes follow the official registry: tiny 192/12/4, small 384/12/8, medium 512/24/8, large 768/24/16 (the depth-24
models use layer scale 1e-5, the depth-12 ones 1.0), plus the CPU sizes ``tost_nano`` and ``tost_micro``.
A traced block also records the soft ``memberships`` Π (B, K, N) of the tokens in the heads.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..operators import MLP, TSSA, CausalTSSA
from ..settings import option
from .base import Block, CausalTransformer, ImageTransformer
from .config import BlockConfig, ImageConfig, TextConfig, compose
from .registry import register_model

__all__ = ["ToSTConfig", "ToSTBlock", "ToST", "ToSTGPT"]


@dataclass
class ToSTConfig(BlockConfig):
    """ToST's block: TSSA then a GELU MLP, residuals with optional LayerScale."""

    mlp_ratio: float = option(4.0, "hidden width of the MLP as a multiple of dim", low=0.0, high=64.0, low_open=True)
    layer_scale: float | None = option(1.0, "initial LayerScale gamma (none: no gamma)", low=-1e6, high=1e6)
    qkv_bias: bool = option(False, "a bias in the subspace projection qkv")


class ToSTBlock(Block):
    """``norm1, attn (TSSA, or CausalTSSA), norm2, mlp`` and, with ``layer_scale``, per-channel ``gamma1``/``gamma2``."""

    def __init__(self, c: ToSTConfig, causal: bool = False, context: int | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(c.dim)
        self.attn = CausalTSSA(c.dim, c.heads, c.head_width, context, c.dropout, qkv_bias=c.qkv_bias) if causal \
            else TSSA(c.dim, c.heads, c.head_width, c.dropout, qkv_bias=c.qkv_bias)
        self.norm2 = nn.LayerNorm(c.dim)
        self.mlp = MLP(c.dim, c.mlp_ratio, c.dropout)
        if c.layer_scale is None:
            self.gamma1 = self.gamma2 = None
        else:
            self.gamma1 = nn.Parameter(torch.full((c.dim,), float(c.layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((c.dim,), float(c.layer_scale)))

    attention_norm = property(lambda self: self.norm1)
    attention = property(lambda self: self.attn)

    def attention_scale(self, a: Tensor) -> Tensor:
        return a if self.gamma1 is None else self.gamma1 * a

    def update(self, mid: Tensor) -> Tensor:
        m = self.mlp(self.norm2(mid))
        return mid + (m if self.gamma2 is None else self.gamma2 * m)

    def trace_extras(self, record: dict) -> dict:
        return {"memberships": self.attn.memberships(record["attn_input"])}


class ToST(ImageTransformer):
    """ToST for image classification (pools by the mean; see the module docstring)."""

    Block = ToSTBlock
    Config = compose(ToSTConfig, ImageConfig, "ToSTImageConfig", pool="mean", dim=192, depth=12, heads=4)

    def memberships(self, x: Tensor) -> list[Tensor]:
        """Per block, the soft assignment Π (B, K, N+1) of the tokens to the heads (TSSA has no N × N map)."""
        return [rec["memberships"] for rec in self.trace(x)]


class ToSTGPT(CausalTransformer):
    """Causal Token Statistics Transformer for language modelling (nanoGPT's initialisation, as the authors')."""

    Block = ToSTBlock
    Config = compose(ToSTConfig, TextConfig, "ToSTTextConfig", layer_scale=None, dim=144, depth=4, heads=4)


@register_model
def tost_tiny():
    """ToST-T (official sizes, ImageNet 224/16)"""
    return ToST.Config(dim=192, depth=12, heads=4, layer_scale=1.0)


@register_model
def tost_small():
    """ToST-S (official sizes, ImageNet 224/16)"""
    return ToST.Config(dim=384, depth=12, heads=8, layer_scale=1.0)


@register_model
def tost_medium():
    """ToST-M (official sizes, ImageNet 224/16)"""
    return ToST.Config(dim=512, depth=24, heads=8, layer_scale=1e-5)


@register_model
def tost_large():
    """ToST-L (official sizes, ImageNet 224/16)"""
    return ToST.Config(dim=768, depth=24, heads=16, layer_scale=1e-5)


@register_model
def tost_nano():
    """CPU: ToST on 8x8 digits, patch 2 (params ~ crate_nano)"""
    return ToST.Config(image_size=8, patch_size=2, num_classes=10, channels=1, dim=56, depth=4, heads=4)


@register_model
def tost_micro():
    """CPU: ToST on 28x28 (MNIST), patch 4 (params ~ crate_micro)"""
    return ToST.Config(image_size=28, patch_size=4, num_classes=10, channels=1, dim=72, depth=6, heads=4)


@register_model
def tost_gpt_nano():
    """causal ToST (TSSA over running prefix statistics + MLP 4x); context 128, dim 144, depth 4, heads 4"""
    return ToSTGPT.Config(context=128, dim=144, depth=4, heads=4)


@register_model
def tost_gpt_small():
    """causal ToST (TSSA over running prefix statistics + MLP 4x); context 256, dim 432, depth 6, heads 6"""
    return ToSTGPT.Config(context=256, dim=432, depth=6, heads=6)


@register_model
def tost_gpt_base():
    """causal ToST (TSSA over running prefix statistics + MLP 4x); context 1024, dim 864, depth 12, heads 12"""
    return ToSTGPT.Config(context=1024, dim=864, depth=12, heads=12)
