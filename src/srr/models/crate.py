"""CRATE: the white-box transformer of Yu et al., exactly as the authors' code (REFERENCE §2).

Each layer is one step of alternating minimisation of the sparse rate reduction:

    z = MSSA(LN(x)) + x        compression: lowers R^c(Z | U_[K])
    x = ISTA(LN(z))            sparsification: one ISTA step against the dictionary D

The state dict uses the authors' key names, so their checkpoints load strictly.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..operators import ISTA, MSSA, PreNorm
from .hub import PretrainedMixin
from .registry import register_model
from .vision import VisionBackbone

__all__ = ["CRATE", "CRATETransformer"]


class CRATETransformer(nn.Module):
    """``layers[i] = [PreNorm(MSSA), PreNorm(ISTA)]``, the authors' ``transformer`` module."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, dropout: float = 0.0,
                 step_size: float = 0.1, lambd: float = 0.1, causal: bool = False, attn_output: str = "learned",
                 attn_step: float = 1.0):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PreNorm(dim, MSSA(dim, heads, dim_head, dropout, causal=causal, output=attn_output, step=attn_step)),
                PreNorm(dim, ISTA(dim, step_size, lambd)),
            ])
            for _ in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        for attn, ista in self.layers:
            x = ista(attn(x) + x)
        return x

    def trace(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per layer: ``input`` Z^ℓ, ``mssa_input`` LN(Z^ℓ), ``compressed`` Z^{ℓ+½}, ``output`` (the ISTA output)."""
        records = []
        for attn, ista in self.layers:
            normed = attn.norm(x)
            z = attn.fn(normed) + x
            out = ista(z)
            records.append({"input": x, "mssa_input": normed, "compressed": z, "output": out})
            x = out
        return records


class CRATE(PretrainedMixin, VisionBackbone):
    """CRATE for image classification. Arguments follow the authors' constructor; ``dim_head`` defaults to
    ``dim // heads``; ``step_size`` (η) and ``lambd`` (λ) are the ISTA step and threshold. ``attn_output`` and
    ``attn_step`` pick the compression-step variant of REFERENCE §8 (CRATE-C/N/T, see :mod:`srr.operators.mssa`)."""

    def __init__(self, image_size=224, patch_size=16, num_classes: int = 1000, dim: int = 384, depth: int = 12,
                 heads: int = 6, dim_head: int | None = None, channels: int = 3, pool: str = "cls",
                 dropout: float = 0.0, emb_dropout: float = 0.0, step_size: float = 0.1, lambd: float = 0.1,
                 attn_output: str = "learned", attn_step: float = 1.0):
        super().__init__(image_size, patch_size, num_classes, dim, channels, pool, emb_dropout)
        dim_head = dim // heads if dim_head is None else dim_head
        self.heads, self.dim_head, self.depth = heads, dim_head, depth
        self.transformer = CRATETransformer(dim, depth, heads, dim_head, dropout, step_size, lambd,
                                            attn_output=attn_output, attn_step=attn_step)

    def encode(self, z: Tensor) -> Tensor:
        return self.transformer(z)

    def trace(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per-layer intermediate tokens (see :meth:`CRATETransformer.trace`)."""
        return self.transformer.trace(self.tokens(x))

    def subspaces(self) -> list[Tensor]:
        """Per layer, the subspace bases U (K, d, p) of its tied MSSA projection."""
        from ..measures import heads_from_qkv

        return [heads_from_qkv(attn.fn.qkv.weight, self.heads) for attn, _ in self.transformer.layers]

    def attention_maps(self, x: Tensor) -> list[Tensor]:
        """Per layer, the softmax attention (B, K, N+1, N+1) of every head."""
        maps = []
        for rec, (attn, _) in zip(self.trace(x), self.transformer.layers):
            maps.append(attn.fn.attention(rec["mssa_input"]))
        return maps


_SIZES = {"tiny": (384, 12, 6), "small": (576, 12, 12), "base": (768, 12, 12), "large": (1024, 24, 16)}
for _size, (_dim, _depth, _heads) in _SIZES.items():
    register_model(f"crate_{_size}", CRATE, f"CRATE-{_size[0].upper()} (paper, ImageNet 224/16)", dim=_dim,
                   depth=_depth, heads=_heads, image_size=224, patch_size=16, num_classes=1000, channels=3)

register_model("crate_nano", CRATE, "CPU demo: 8x8 one-channel digits, patch 2", image_size=8, patch_size=2,
               num_classes=10, channels=1, dim=96, depth=4, heads=4, pool="mean")
register_model("crate_micro", CRATE, "CPU: 28x28 one-channel (MNIST), patch 4", image_size=28, patch_size=4,
               num_classes=10, channels=1, dim=128, depth=6, heads=4)
