"""The plain Vision Transformer baseline: pre-norm blocks of MHSA (qkv bias) and a GELU MLP of ratio 4.

    x = x + MHSA(LN(x));  x = x + MLP(LN(x))

Same patch embedding, CLS token, positional embedding and head as CRATE (:class:`VisionBackbone`), so the two differ
only in their layers. Sizes: ``vit_tiny`` (192/12/3, 5.7M) matches ``crate_tiny`` (6.1M) in parameters,
``vit_small`` (384/12/6, 22M) matches ``crate_base``; ``vit_nano``/``vit_micro`` match the CPU CRATE configurations.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..operators import MLP, MultiHeadSelfAttention
from .hub import PretrainedMixin
from .registry import register_model
from .vision import VisionBackbone

__all__ = ["ViT", "ViTBlock"]


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 causal: bool = False, qkv_bias: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, dim_head, qkv_bias=qkv_bias, dropout=dropout, causal=causal)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(PretrainedMixin, VisionBackbone):
    """Vision Transformer with the constructor arguments of :class:`~srr.models.crate.CRATE` plus ``mlp_ratio``."""

    def __init__(self, image_size=224, patch_size=16, num_classes: int = 1000, dim: int = 192, depth: int = 12,
                 heads: int = 3, dim_head: int | None = None, channels: int = 3, pool: str = "cls",
                 dropout: float = 0.0, emb_dropout: float = 0.0, mlp_ratio: float = 4.0):
        super().__init__(image_size, patch_size, num_classes, dim, channels, pool, emb_dropout)
        dim_head = dim // heads if dim_head is None else dim_head
        self.heads, self.dim_head, self.depth = heads, dim_head, depth
        self.blocks = nn.ModuleList(ViTBlock(dim, heads, dim_head, mlp_ratio, dropout) for _ in range(depth))

    def encode(self, z: Tensor) -> Tensor:
        for block in self.blocks:
            z = block(z)
        return z

    def trace(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per block: ``input`` and ``output`` tokens, and ``attn_input`` (LN of the input)."""
        z, records = self.tokens(x), []
        for block in self.blocks:
            out = block(z)
            records.append({"input": z, "attn_input": block.norm1(z), "output": out})
            z = out
        return records

    def attention_maps(self, x: Tensor) -> list[Tensor]:
        return [blk.attn.attention(rec["attn_input"]) for blk, rec in zip(self.blocks, self.trace(x))]


_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}
for _size, (_dim, _depth, _heads) in _SIZES.items():
    register_model(f"vit_{_size}", ViT, f"ViT-{_size[0].upper()} baseline (DeiT sizes, ImageNet 224/16)", dim=_dim,
                   depth=_depth, heads=_heads)
register_model("vit_nano", ViT, "CPU baseline for crate_nano: 8x8 one-channel, patch 2", image_size=8,
               patch_size=2, num_classes=10, channels=1, dim=64, depth=2, heads=4, pool="mean")
register_model("vit_micro", ViT, "CPU baseline for crate_micro: 28x28 one-channel, patch 4", image_size=28,
               patch_size=4, num_classes=10, channels=1, dim=96, depth=3, heads=4)
