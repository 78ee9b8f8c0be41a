"""CRATE-α: CRATE with an overcomplete, decoupled dictionary and a residual around it (REFERENCE §3).

Each layer, pre-norm, with residual connections around both steps:

    x = MSSA(LN(x)) + x        compression (no bias in ``to_out``, as the authors' CRATE-α)
    x = ODL(LN(x)) + x         sparse coding in D ∈ R^{d × 4d}, decoded by D̂ (see :mod:`srr.operators.odl`)

Differences from the authors' CRATE-α code, stated: the patch embedding is the shared one of
:class:`~srr.models.vision.VisionBackbone` (LayerNorm, Linear, LayerNorm — the authors use a Conv2d with kernel and
stride equal to the patch size, which is the Linear alone), and LayerNorm uses PyTorch's ε = 1e-5 (theirs 1e-6).
Sizes: the CRATE sizes (tiny 384/12/6, small 576/12/12, base 768/12/12, large 1024/24/16, patch 16; the paper's
large model uses patch 14 — pass ``patch_size=14``) and the CPU sizes ``crate_alpha_nano`` / ``crate_alpha_micro``,
narrower than ``crate_nano`` / ``crate_micro`` so that the parameter counts match (ODL holds 8·d² per layer).
"""
from __future__ import annotations

from torch import Tensor, nn

from ..operators import MSSA, ODL, PreNorm
from .hub import PretrainedMixin
from .registry import register_model
from .vision import VisionBackbone
from .whitebox import AttentionMapMixin, SubspaceMixin, TransformerMixin, crate_widths

__all__ = ["CRATEAlpha", "CRATEAlphaTransformer"]


class CRATEAlphaTransformer(nn.Module):
    """``layers[i] = [PreNorm(MSSA without output bias), PreNorm(ODL)]``, residual around both."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, dropout: float = 0.0,
                 overcomplete_ratio: int = 4, step_size: float = 0.1, lambd: float = 0.1, decouple: bool = True):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PreNorm(dim, MSSA(dim, heads, dim_head, dropout, out_bias=False)),
                PreNorm(dim, ODL(dim, overcomplete_ratio, step_size, lambd, decouple)),
            ])
            for _ in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        for attn, odl in self.layers:
            x = attn(x) + x
            x = odl(x) + x
        return x

    def trace(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per layer: ``input``, ``mssa_input`` LN(Z^ℓ), ``compressed`` Z^{ℓ+½}, ``codes`` (the sparse A2,
        N × 4d) and ``output`` Z^{ℓ+1}."""
        records = []
        for attn, odl in self.layers:
            normed = attn.norm(x)
            z = attn.fn(normed) + x
            codes = odl.fn.codes(odl.norm(z))
            out = nn.functional.linear(codes, odl.fn.decoder) + z
            records.append({"input": x, "mssa_input": normed, "compressed": z, "codes": codes, "output": out})
            x = out
        return records


class CRATEAlpha(TransformerMixin, SubspaceMixin, AttentionMapMixin, PretrainedMixin, VisionBackbone):
    """CRATE-α for image classification; the arguments of :class:`~srr.models.crate.CRATE` plus the dictionary's
    ``overcomplete_ratio`` (C = 4) and ``decouple`` (D̂ separate from D)."""

    def __init__(self, image_size=224, patch_size=16, num_classes: int = 1000, dim: int = 384, depth: int = 12,
                 heads: int = 6, dim_head: int | None = None, channels: int = 3, pool: str = "cls",
                 dropout: float = 0.0, emb_dropout: float = 0.0, step_size: float = 0.1, lambd: float = 0.1,
                 overcomplete_ratio: int = 4, decouple: bool = True):
        super().__init__(image_size, patch_size, num_classes, dim, channels, pool, emb_dropout)
        dim_head = dim // heads if dim_head is None else dim_head
        self.heads, self.dim_head, self.depth = heads, dim_head, depth
        self.transformer = CRATEAlphaTransformer(dim, depth, heads, dim_head, dropout, overcomplete_ratio, step_size,
                                                 lambd, decouple)


for _size in ("tiny", "small", "base", "large"):
    register_model(f"crate_alpha_{_size}", CRATEAlpha, f"CRATE-α at CRATE-{_size[0].upper()}'s width (ImageNet 224/16)",
                   **crate_widths(_size))
register_model("crate_alpha_nano", CRATEAlpha, "CPU: CRATE-α on 8x8 digits, patch 2 (params ~ crate_nano)",
               image_size=8, patch_size=2, num_classes=10, channels=1, dim=56, depth=4, heads=4, pool="mean")
register_model("crate_alpha_micro", CRATEAlpha, "CPU: CRATE-α on 28x28 (MNIST), patch 4 (params ~ crate_micro)",
               image_size=28, patch_size=4, num_classes=10, channels=1, dim=72, depth=6, heads=4)
