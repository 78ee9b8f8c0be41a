"""CRATE: the white-box transformer of Yu et al., exactly as the authors' code; its causal form for text; the
compression-step variants of the sparse-rate-reduction study.

Each layer is one step of alternating minimisation of the sparse rate reduction:

    z = MSSA(LN(x)) + x        compression: lowers R^c(Z | U_[K])
    x = ISTA(LN(z))            sparsification: one ISTA step against the dictionary D (no residual)

The block is ``[PreNorm(MSSA), PreNorm(ISTA)]`` under ``transformer.layers.{i}.{0,1}``, the authors' key names, so
their checkpoints load strictly. ``attn_output`` selects the output matrix of MSSA (see :mod:`srr.operators.mssa`):

    learned     CRATE, the authors' code (a free ``to_out``)
    subspace    CRATE-C: output through U itself          (registry ``crate_conceptual_*``)
    negative    CRATE-N: through −U                        (``crate_negative_*``)
    transpose   CRATE-Transpose: through Uᵀ, no new parameters  (``crate_transpose_*``; needs heads · dim_head = dim)

with the step αγ² fixed to ``attn_step`` (1). The variants share the CRATE entry of the same size (so they hold
d·K·p + d fewer parameters per layer: no ``to_out``); the study ranks them CRATE-C < CRATE-N < CRATE-Transpose ≈
CRATE. (The study calls the transpose variant CRATE-T; srr does not, since CRATE-T is also the tiny size.)
CRATE-GPT is the same block with a causal mask: every token is compressed only against the tokens before it (per
layer 3d² + 6d parameters, so ``crate_gpt_*`` doubles the width of ``gpt_*``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..operators import ISTA, MSSA, PreNorm
from ..operators.mssa import OUTPUTS
from ..settings import option
from .base import CausalTransformer, ImageTransformer, SequentialBlock
from .config import BlockConfig, ImageConfig, TextConfig, compose
from .registry import register_model

__all__ = ["CRATEConfig", "CRATEBlock", "CRATE", "CRATEGPT"]


@dataclass
class CRATEConfig(BlockConfig):
    """CRATE's layer: MSSA, then one ISTA step."""

    step_size: float = option(0.1, "ISTA step size η", low=0.0, high=1e6)
    lambd: float = option(0.1, "ISTA threshold λ", low=0.0, high=1e6)
    attn_output: str = option("learned", "output matrix of MSSA: learned (CRATE), subspace (CRATE-C), "
                                         "negative (CRATE-N), transpose (CRATE-Transpose)", choices=OUTPUTS)
    attn_step: float = option(1.0, "step αγ² of the variants' output through U", low=-1e6, high=1e6)

    def check(self) -> None:
        super().check()
        if self.attn_output == "transpose" and self.heads * self.head_width != self.dim:
            raise ConfigError(f"attn_output='transpose' (CRATE-Transpose) needs heads*dim_head == dim; got "
                              f"{self.heads}*{self.head_width} != {self.dim}")


class CRATEBlock(SequentialBlock):
    """``0`` = PreNorm(MSSA), ``1`` = PreNorm(ISTA); ``x ↦ ISTA(LN(x + MSSA(LN(x))))``."""

    def __init__(self, c: CRATEConfig, causal: bool = False, context: int | None = None):
        super().__init__()
        self.add_module("0", PreNorm(c.dim, MSSA(c.dim, c.heads, c.head_width, c.dropout, causal=causal,
                                                 output=c.attn_output, step=c.attn_step)))
        self.add_module("1", PreNorm(c.dim, ISTA(c.dim, c.step_size, c.lambd)))

    attention_norm = property(lambda self: self[0].norm)
    attention = property(lambda self: self[0].fn)

    def update(self, mid):
        return self[1](mid)


class CRATE(ImageTransformer):
    """CRATE for image classification (the authors' constructor arguments as configuration fields)."""

    Block = CRATEBlock
    Config = compose(CRATEConfig, ImageConfig, "CRATEImageConfig")
    BLOCKS = "transformer.layers"


class CRATEGPT(CausalTransformer):
    """Causal CRATE language model (the CRATE code keeps the operators' own initialisation)."""

    Block = CRATEBlock
    Config = compose(CRATEConfig, TextConfig, "CRATETextConfig", dim=256, depth=4, heads=8)
    BLOCKS = "transformer.layers"
    GPT2_INIT = False


def _nano(**kw):
    return CRATE.Config(image_size=8, patch_size=2, num_classes=10, channels=1, dim=96, depth=4, heads=4,
                        pool="mean", **kw)


def _micro(**kw):
    return CRATE.Config(image_size=28, patch_size=4, num_classes=10, channels=1, dim=128, depth=6, heads=4, **kw)


# --- CRATE (paper sizes: ImageNet 224/16, 1000 classes) and CPU sizes --------------------------------------------

@register_model
def crate_tiny():
    """CRATE-Tiny (paper, ImageNet 224/16)"""
    return CRATE.Config(dim=384, depth=12, heads=6)


@register_model
def crate_small():
    """CRATE-S (paper, ImageNet 224/16)"""
    return CRATE.Config(dim=576, depth=12, heads=12)


@register_model
def crate_base():
    """CRATE-B (paper, ImageNet 224/16)"""
    return CRATE.Config(dim=768, depth=12, heads=12)


@register_model
def crate_large():
    """CRATE-L (paper, ImageNet 224/16)"""
    return CRATE.Config(dim=1024, depth=24, heads=16)


@register_model
def crate_nano():
    """CPU demo: 8x8 one-channel digits, patch 2"""
    return _nano()


@register_model
def crate_micro():
    """CPU: 28x28 one-channel (MNIST), patch 4"""
    return _micro()


# --- the compression-step variants: CRATE-C (subspace), CRATE-N (negative), CRATE-Transpose --------------------

@register_model
def crate_conceptual_tiny():
    """CRATE-C: output through U itself; crate_tiny's configuration"""
    return CRATE.Config(dim=384, depth=12, heads=6, attn_output="subspace")


@register_model
def crate_conceptual_small():
    """CRATE-C: output through U itself; crate_small's configuration"""
    return CRATE.Config(dim=576, depth=12, heads=12, attn_output="subspace")


@register_model
def crate_conceptual_base():
    """CRATE-C: output through U itself; crate_base's configuration"""
    return CRATE.Config(dim=768, depth=12, heads=12, attn_output="subspace")


@register_model
def crate_conceptual_large():
    """CRATE-C: output through U itself; crate_large's configuration"""
    return CRATE.Config(dim=1024, depth=24, heads=16, attn_output="subspace")


@register_model
def crate_conceptual_nano():
    """CRATE-C: output through U itself; crate_nano's configuration"""
    return _nano(attn_output="subspace")


@register_model
def crate_conceptual_micro():
    """CRATE-C: output through U itself; crate_micro's configuration"""
    return _micro(attn_output="subspace")


@register_model
def crate_negative_tiny():
    """CRATE-N: output through -U; crate_tiny's configuration"""
    return CRATE.Config(dim=384, depth=12, heads=6, attn_output="negative")


@register_model
def crate_negative_small():
    """CRATE-N: output through -U; crate_small's configuration"""
    return CRATE.Config(dim=576, depth=12, heads=12, attn_output="negative")


@register_model
def crate_negative_base():
    """CRATE-N: output through -U; crate_base's configuration"""
    return CRATE.Config(dim=768, depth=12, heads=12, attn_output="negative")


@register_model
def crate_negative_large():
    """CRATE-N: output through -U; crate_large's configuration"""
    return CRATE.Config(dim=1024, depth=24, heads=16, attn_output="negative")


@register_model
def crate_negative_nano():
    """CRATE-N: output through -U; crate_nano's configuration"""
    return _nano(attn_output="negative")


@register_model
def crate_negative_micro():
    """CRATE-N: output through -U; crate_micro's configuration"""
    return _micro(attn_output="negative")


@register_model
def crate_transpose_tiny():
    """CRATE-Transpose: output through U^T, no new parameters; crate_tiny's configuration"""
    return CRATE.Config(dim=384, depth=12, heads=6, attn_output="transpose")


@register_model
def crate_transpose_small():
    """CRATE-Transpose: output through U^T, no new parameters; crate_small's configuration"""
    return CRATE.Config(dim=576, depth=12, heads=12, attn_output="transpose")


@register_model
def crate_transpose_base():
    """CRATE-Transpose: output through U^T, no new parameters; crate_base's configuration"""
    return CRATE.Config(dim=768, depth=12, heads=12, attn_output="transpose")


@register_model
def crate_transpose_large():
    """CRATE-Transpose: output through U^T, no new parameters; crate_large's configuration"""
    return CRATE.Config(dim=1024, depth=24, heads=16, attn_output="transpose")


@register_model
def crate_transpose_nano():
    """CRATE-Transpose: output through U^T, no new parameters; crate_nano's configuration"""
    return _nano(attn_output="transpose")


@register_model
def crate_transpose_micro():
    """CRATE-Transpose: output through U^T, no new parameters; crate_micro's configuration"""
    return _micro(attn_output="transpose")


# --- CRATE-GPT (causal; sizes that match gpt_* in parameters) ------------------------------------------------------

@register_model
def crate_gpt_nano():
    """CRATE-GPT (causal MSSA + ISTA, tied head); context 128, dim 256, depth 4, heads 8"""
    return CRATEGPT.Config(context=128, dim=256, depth=4, heads=8)


@register_model
def crate_gpt_small():
    """CRATE-GPT (causal MSSA + ISTA, tied head); context 256, dim 768, depth 6, heads 12"""
    return CRATEGPT.Config(context=256, dim=768, depth=6, heads=12)


@register_model
def crate_gpt_base():
    """CRATE-GPT (causal MSSA + ISTA, tied head); context 1024, dim 1536, depth 12, heads 24"""
    return CRATEGPT.Config(context=1024, dim=1536, depth=12, heads=24)

