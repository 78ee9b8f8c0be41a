"""CRATE-α: CRATE with an overcomplete, decoupled dictionary and a residual around it.

Each layer, pre-norm, with residual connections around both steps:

    x = MSSA(LN(x)) + x        compression (no bias in ``to_out``, as the authors' CRATE-α)
    x = ODL(LN(x)) + x         sparse coding in D ∈ R^{d × 4d}, decoded by D̂ (see :mod:`srr.operators.odl`)

Differences from the authors' CRATE-α code, stated: the patch embedding is the shared one (LayerNorm, Linear,
LayerNorm — the authors use a Conv2d with kernel and stride equal to the patch size, which is the Linear alone), and
LayerNorm uses PyTorch's ε = 1e-5 (theirs 1e-6). Sizes: the CRATE widths (tiny 384/12/6, small 576/12/12, base
768/12/12, large 1024/24/16, patch 16; the paper's large model uses patch 14 — pass ``patch_size=14``) and the CPU
sizes ``crate_alpha_nano`` / ``crate_alpha_micro``, narrower than ``crate_nano`` / ``crate_micro`` so that the
parameter counts match (ODL holds 8·d² per layer). A traced layer also records the sparse ``codes`` A2 (N × 4d).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..operators import MSSA, ODL, PreNorm
from ..settings import option
from .base import ImageTransformer, SequentialBlock
from .config import BlockConfig, ImageConfig, compose
from .registry import register_model

__all__ = ["CRATEAlphaConfig", "CRATEAlphaBlock", "CRATEAlpha"]


@dataclass
class CRATEAlphaConfig(BlockConfig):
    """CRATE-α's layer: MSSA, then two ISTA steps in an overcomplete dictionary, with residuals."""

    step_size: float = option(0.1, "ISTA step size η", low=0.0, high=1e6)
    lambd: float = option(0.1, "ISTA threshold λ", low=0.0, high=1e6)
    overcomplete_ratio: int = option(4, "dictionary atoms per dimension (D is d x C·d)", low=1, high=64)
    decouple: bool = option(True, "a decoder D̂ separate from the dictionary D")


class CRATEAlphaBlock(SequentialBlock):
    """``0`` = PreNorm(MSSA without output bias), ``1`` = PreNorm(ODL); residuals around both."""

    def __init__(self, c: CRATEAlphaConfig, causal: bool = False, context: int | None = None):
        super().__init__()
        self.add_module("0", PreNorm(c.dim, MSSA(c.dim, c.heads, c.head_width, c.dropout, causal=causal,
                                                 out_bias=False)))
        self.add_module("1", PreNorm(c.dim, ODL(c.dim, c.overcomplete_ratio, c.step_size, c.lambd, c.decouple)))

    attention_norm = property(lambda self: self[0].norm)
    attention = property(lambda self: self[0].fn)

    def update(self, mid):
        return mid + self[1](mid)

    def trace_extras(self, record: dict) -> dict:
        odl = self[1]
        return {"codes": odl.fn.codes(odl.norm(record["mid"]))}


class CRATEAlpha(ImageTransformer):
    """CRATE-α for image classification."""

    Block = CRATEAlphaBlock
    Config = compose(CRATEAlphaConfig, ImageConfig, "CRATEAlphaImageConfig")
    BLOCKS = "transformer.layers"


@register_model
def crate_alpha_tiny():
    """CRATE-α at CRATE-Tiny's width (ImageNet 224/16)"""
    return CRATEAlpha.Config(dim=384, depth=12, heads=6)


@register_model
def crate_alpha_small():
    """CRATE-α at CRATE-S's width (ImageNet 224/16)"""
    return CRATEAlpha.Config(dim=576, depth=12, heads=12)


@register_model
def crate_alpha_base():
    """CRATE-α at CRATE-B's width (ImageNet 224/16)"""
    return CRATEAlpha.Config(dim=768, depth=12, heads=12)


@register_model
def crate_alpha_large():
    """CRATE-α at CRATE-L's width (ImageNet 224/16)"""
    return CRATEAlpha.Config(dim=1024, depth=24, heads=16)


@register_model
def crate_alpha_nano():
    """CPU: CRATE-α on 8x8 digits, patch 2 (params ~ crate_nano)"""
    return CRATEAlpha.Config(image_size=8, patch_size=2, num_classes=10, channels=1, dim=56, depth=4, heads=4,
                             pool="mean")


@register_model
def crate_alpha_micro():
    """CPU: CRATE-α on 28x28 (MNIST), patch 4 (params ~ crate_micro)"""
    return CRATEAlpha.Config(image_size=28, patch_size=4, num_classes=10, channels=1, dim=72, depth=6, heads=4)
