"""ToST, the Token Statistics Transformer: TSSA in place of self-attention, linear in the number of tokens (§4).

Each block, pre-norm with residuals and (optional) layer scale γ as the official code:

    x = x + γ₁ · TSSA(LN(x))      compression against U_[K] through token statistics (O(N·d))
    x = x + γ₂ · MLP(LN(x))       GELU MLP of ratio 4, as the official ToST (which keeps XCiT's MLP)

Differences from the official vision code (``tost_vision/tost.py``, an XCiT derivative), stated: the patch embedding,
CLS token, learned positional embedding and head are the shared ones of :class:`~srr.models.vision.VisionBackbone`
(officially: a 4-layer convolutional patch embedding with batch norm, Fourier positional encoding, the CLS token
appended after the blocks and 2 class-attention blocks before the head); the read-out is the mean of the tokens
(``pool="mean"``): TSSA mixes tokens only through global statistics, so a CLS token learns little from the patches
(the official model reads out through its class-attention blocks); LayerNorm ε = 1e-5 (theirs 1e-6);
``qkv`` without bias (theirs with). Parameter counts therefore differ from the published ones: ``tost_tiny`` has
4,832,344 and ``tost_small`` 18,509,512 against 5.8M and 22.6M. Counting the official architecture the same way gives
5,769,328 and 22,589,944 (the published figures): its two class-attention blocks hold 890,496 / 3,550,464 parameters
and its convolutional stem 219,096 / 873,648 (against 149,568 / 297,600 here for LN, Linear, LN).
Sizes follow the official registry: tiny 192/12/4, small 384/12/8, medium 512/24/8, large 768/24/16 (the depth-24
models use layer scale 1e-5, the depth-12 ones 1.0), plus the CPU sizes ``tost_nano`` and ``tost_micro``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..operators import MLP, TSSA
from .hub import PretrainedMixin
from .registry import register_model
from .vision import VisionBackbone
from .whitebox import SubspaceMixin

__all__ = ["ToST", "ToSTBlock"]


class ToSTBlock(nn.Module):
    """``norm1, attn (TSSA), norm2, mlp`` and, with ``layer_scale``, per-channel ``gamma1``/``gamma2``."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 layer_scale: float | None = None, qkv_bias: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = TSSA(dim, heads, dim_head, dropout, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)
        if layer_scale is not None:
            self.gamma1 = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((dim,), float(layer_scale)))
        else:
            self.gamma1 = self.gamma2 = None

    def attend(self, x: Tensor) -> Tensor:
        """``x + γ₁ · TSSA(LN(x))``."""
        a = self.attn(self.norm1(x))
        return x + (a if self.gamma1 is None else self.gamma1 * a)

    def feed(self, x: Tensor) -> Tensor:
        """``x + γ₂ · MLP(LN(x))``."""
        m = self.mlp(self.norm2(x))
        return x + (m if self.gamma2 is None else self.gamma2 * m)

    def forward(self, x: Tensor) -> Tensor:
        return self.feed(self.attend(x))


class ToST(SubspaceMixin, PretrainedMixin, VisionBackbone):
    """ToST for image classification: the arguments of :class:`~srr.models.vit.ViT` plus ``layer_scale`` (initial
    γ, None for none) and ``qkv_bias``; ``pool`` defaults to ``"mean"`` (see the module docstring)."""

    def __init__(self, image_size=224, patch_size=16, num_classes: int = 1000, dim: int = 192, depth: int = 12,
                 heads: int = 4, dim_head: int | None = None, channels: int = 3, pool: str = "mean",
                 dropout: float = 0.0, emb_dropout: float = 0.0, mlp_ratio: float = 4.0,
                 layer_scale: float | None = 1.0, qkv_bias: bool = False):
        super().__init__(image_size, patch_size, num_classes, dim, channels, pool, emb_dropout)
        dim_head = dim // heads if dim_head is None else dim_head
        self.heads, self.dim_head, self.depth = heads, dim_head, depth
        self.blocks = nn.ModuleList(ToSTBlock(dim, heads, dim_head, mlp_ratio, dropout, layer_scale, qkv_bias)
                                    for _ in range(depth))

    def attention_modules(self) -> list[nn.Module]:
        return [block.attn for block in self.blocks]

    def encode(self, z: Tensor) -> Tensor:
        for block in self.blocks:
            z = block(z)
        return z

    def trace(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per block: ``input``, ``mssa_input`` (the TSSA input LN(Z^ℓ)), ``memberships`` Π (B, K, N+1),
        ``compressed`` (after the TSSA residual) and ``output``."""
        z, records = self.tokens(x), []
        for block in self.blocks:
            normed = block.norm1(z)
            compressed = block.attend(z)
            out = block.feed(compressed)
            records.append({"input": z, "mssa_input": normed, "memberships": block.attn.memberships(normed),
                            "compressed": compressed, "output": out})
            z = out
        return records

    def memberships(self, x: Tensor) -> list[Tensor]:
        """Per block, the soft assignment Π (B, K, N+1) of the tokens to the heads (TSSA has no N × N map)."""
        return [rec["memberships"] for rec in self.trace(x)]


_SIZES = {"tiny": (192, 12, 4, 1.0), "small": (384, 12, 8, 1.0), "medium": (512, 24, 8, 1e-5),
          "large": (768, 24, 16, 1e-5)}
for _size, (_dim, _depth, _heads, _ls) in _SIZES.items():
    register_model(f"tost_{_size}", ToST, f"ToST-{_size[0].upper()} (official sizes, ImageNet 224/16)", dim=_dim,
                   depth=_depth, heads=_heads, layer_scale=_ls)
register_model("tost_nano", ToST, "CPU: ToST on 8x8 digits, patch 2 (params ~ crate_nano)", image_size=8,
               patch_size=2, num_classes=10, channels=1, dim=56, depth=4, heads=4)
register_model("tost_micro", ToST, "CPU: ToST on 28x28 (MNIST), patch 4 (params ~ crate_micro)", image_size=28,
               patch_size=4, num_classes=10, channels=1, dim=72, depth=6, heads=4)
