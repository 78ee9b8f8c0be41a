"""The engineered baselines: the Vision Transformer and GPT, one block of MHSA (qkv bias) and a GELU MLP of ratio 4.

    x = x + MHSA(LN(x));  x = x + MLP(LN(x))        (GPT: MHSA with a causal mask)

The three projections are free (not tied to one subspace basis), so the block optimises no stated objective: it is
what the white-box families are compared against. Same front ends as theirs, so the two differ only in their layers.
Sizes: ``vit_tiny`` (192/12/3, 5.7M) matches ``crate_tiny`` (6.1M) in parameters, ``vit_small`` (384/12/6, 22M)
matches ``crate_base``; ``vit_nano``/``vit_micro`` match the CPU CRATE configurations; ``gpt_*`` (per layer
12d² + 13d) set the sizes the causal white-box families match.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..operators import MLP, MultiHeadSelfAttention
from ..settings import option
from .base import Block, CausalTransformer, ImageTransformer
from .config import BlockConfig, ImageConfig, TextConfig, compose
from .registry import register_model

__all__ = ["ViTConfig", "ViTBlock", "ViT", "GPT"]


@dataclass
class ViTConfig(BlockConfig):
    """The transformer block: multi-head self-attention and an MLP."""

    mlp_ratio: float = option(4.0, "hidden width of the MLP as a multiple of dim", low=0.0, high=64.0, low_open=True)
    qkv_bias: bool = option(True, "biases in the query, key and value projections")


class ViTBlock(Block):
    """``norm1, attn (MHSA), norm2, mlp``."""

    def __init__(self, c: ViTConfig, causal: bool = False, context: int | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(c.dim)
        self.attn = MultiHeadSelfAttention(c.dim, c.heads, c.head_width, qkv_bias=c.qkv_bias, dropout=c.dropout,
                                           causal=causal)
        self.norm2 = nn.LayerNorm(c.dim)
        self.mlp = MLP(c.dim, c.mlp_ratio, c.dropout)

    attention_norm = property(lambda self: self.norm1)
    attention = property(lambda self: self.attn)

    def update(self, mid):
        return mid + self.mlp(self.norm2(mid))


class ViT(ImageTransformer):
    """Vision Transformer baseline."""

    Block = ViTBlock
    Config = compose(ViTConfig, ImageConfig, "ViTImageConfig", dim=192, depth=12, heads=3)


class GPT(CausalTransformer):
    """GPT-2-style causal language model baseline."""

    Block = ViTBlock
    Config = compose(ViTConfig, TextConfig, "ViTTextConfig", dim=128, depth=4, heads=4)


@register_model
def vit_tiny():
    """ViT-T baseline (DeiT sizes, ImageNet 224/16)"""
    return ViT.Config(dim=192, depth=12, heads=3)


@register_model
def vit_small():
    """ViT-S baseline (DeiT sizes, ImageNet 224/16)"""
    return ViT.Config(dim=384, depth=12, heads=6)


@register_model
def vit_base():
    """ViT-B baseline (DeiT sizes, ImageNet 224/16)"""
    return ViT.Config(dim=768, depth=12, heads=12)


@register_model
def vit_nano():
    """CPU baseline for crate_nano: 8x8 one-channel, patch 2"""
    return ViT.Config(image_size=8, patch_size=2, num_classes=10, channels=1, dim=64, depth=2, heads=4, pool="mean")


@register_model
def vit_micro():
    """CPU baseline for crate_micro: 28x28 one-channel, patch 4"""
    return ViT.Config(image_size=28, patch_size=4, num_classes=10, channels=1, dim=96, depth=3, heads=4)


@register_model
def gpt_nano():
    """GPT baseline (causal MHSA + MLP 4x, GELU); context 128, dim 128, depth 4, heads 4"""
    return GPT.Config(context=128, dim=128, depth=4, heads=4)


@register_model
def gpt_small():
    """GPT baseline (causal MHSA + MLP 4x, GELU); context 256, dim 384, depth 6, heads 6"""
    return GPT.Config(context=256, dim=384, depth=6, heads=6)


@register_model
def gpt_base():
    """GPT baseline (causal MHSA + MLP 4x, GELU); context 1024, dim 768, depth 12, heads 12"""
    return GPT.Config(context=1024, dim=768, depth=12, heads=12)
