"""ToST as the authors' vision code builds it (an XCiT derivative), so that their checkpoints load and the published
parameter counts hold: ``tost_tiny_official`` 5,769,328 and ``tost_small_official`` 22,589,944 (224 × 224, patch 16,
1000 classes).

Around the same ToST blocks as :mod:`srr.models.tost` (TSSA with a ``qkv`` bias, LayerScale γ, GELU MLP; LayerNorm
ε = 1e-6), the front and back ends differ from srr's shared image front end:

* **convolutional stem** ``patch_embed``: log₂(patch) convolutions 3 × 3 of stride 2 (no bias), each followed by batch
  norm, GELU between them; widths d/8, d/4, d/2, d for patch 16 (d/4, d/2, d for patch 8). Batch norm uses its running
  statistics in evaluation.
* **Fourier positions** ``pos_embeder``: for patch (row y, column x) of an h × w grid, ŷ = 2π·y/(h + 1e-6),
  x̂ = 2π·x/(w + 1e-6) (rows and columns counted from 1), each divided by 10000^(2⌊i/2⌋/32) for i < 32, sines of the
  even and cosines of the odd i interleaved, [ŷ-features, x̂-features] (64 numbers) projected by a 1 × 1 convolution
  to d and added to the patch tokens. No CLS token during the blocks.
* **class attention** ``cls_attn_blocks`` (2): a CLS token ``cls_token`` is prepended after the ToST blocks; each
  block updates it: ``c ← c + γ₁ · proj(softmax(q_c kᵀ/√p) v)`` over all tokens (q, k, v from one ``qkv`` with
  bias, of LN₁(x)), then the CLS token alone is normalised by LN₂ and ``c ← LN₂(c) + γ₂ · MLP(LN₂(c))``; the patch
  tokens change as in XCiT's code (:class:`ClassAttentionBlock`), which matters only to the next block's keys.
* the head: ``norm`` (LayerNorm) of the CLS token, then ``head`` (Linear).

Parameter names follow the official code (``patch_embed.proj.{0,2,4,6}.{0,1}``, ``pos_embeder.token_projection``,
``blocks.i.{norm1, attn.qkv, attn.temp, attn.to_out.0, gamma1, norm2, mlp.fc1, mlp.fc2, gamma2}``,
``cls_attn_blocks.j.{norm1, attn.qkv, attn.proj, gamma1, norm2, mlp, gamma2}``, ``norm``, ``head``). ``trace``,
``subspaces`` and the memberships work on the ToST blocks (the tokens are the patches only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from ..operators import MLP
from ..settings import option
from .base import TransformerModel
from .config import MAX_CLASSES, MAX_IMAGE, ModelConfig, compose
from .registry import register_model
from .tost import ToSTBlock, ToSTConfig

__all__ = ["ToSTOfficial", "ConvStem", "FourierPositions", "ClassAttentionBlock"]


@dataclass
class OfficialFrontConfig(ModelConfig):
    """The official ToST front and back end: convolutional stem, Fourier positions, class attention."""

    image_size: int = option(224, "image size (square)", low=1, high=MAX_IMAGE)
    patch_size: int = option(16, "patch size: 8 or 16 (3 or 4 stride-2 convolutions)", choices=(8, 16))
    channels: int = option(3, "image channels", low=1, high=4096)
    num_classes: int = option(1000, "number of classes of the head", low=1, high=MAX_CLASSES)
    cls_attn_depth: int = option(2, "class-attention blocks", low=0, high=64)
    norm_eps: float = option(1e-6, "ε of every LayerNorm", low=1e-12, high=1.0)

    task: ClassVar[str] = "image"

    def check(self) -> None:
        super().check()
        if self.image_size % self.patch_size:
            raise ConfigError(f"image size {self.image_size} is not divisible by the patch size {self.patch_size}")
        if self.dim % 8:
            raise ConfigError(f"the convolutional stem needs dim divisible by 8, got {self.dim}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class ConvStem(nn.Module):
    """``proj``: [conv3x3/2 + BN] with GELU between, widths ending at ``dim``; tokens (B, N, d) and the grid."""

    def __init__(self, patch: int, channels: int, dim: int):
        super().__init__()
        steps = int(math.log2(patch))
        widths = [channels] + [dim // 2 ** (steps - 1 - i) for i in range(steps)]
        layers: list[nn.Module] = []
        for i in range(steps):
            if i:
                layers.append(nn.GELU())
            layers.append(nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1, bias=False),
                                        nn.BatchNorm2d(widths[i + 1])))
        self.proj = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


class FourierPositions(nn.Module):
    """Sinusoidal features of the normalised patch coordinates, projected to ``dim`` (module docstring)."""

    def __init__(self, dim: int, hidden: int = 32, temperature: float = 10000.0):
        super().__init__()
        self.hidden, self.temperature = hidden, temperature
        self.token_projection = nn.Conv2d(2 * hidden, dim, 1)

    def forward(self, batch: int, h: int, w: int) -> Tensor:
        device = self.token_projection.weight.device
        ys = torch.arange(1, h + 1, dtype=torch.float32, device=device).view(h, 1).expand(h, w)
        xs = torch.arange(1, w + 1, dtype=torch.float32, device=device).view(1, w).expand(h, w)
        ys, xs = ys / (h + 1e-6) * 2 * math.pi, xs / (w + 1e-6) * 2 * math.pi
        i = torch.arange(self.hidden, dtype=torch.float32, device=device)
        scale = self.temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / self.hidden)

        def features(v: Tensor) -> Tensor:
            v = v[..., None] / scale  # (h, w, hidden)
            return torch.stack((v[..., 0::2].sin(), v[..., 1::2].cos()), dim=3).flatten(2)

        pos = torch.cat((features(ys), features(xs)), dim=2).permute(2, 0, 1)[None]  # (1, 2·hidden, h, w)
        pos = self.token_projection(pos.to(self.token_projection.weight.dtype))
        return pos.flatten(2).transpose(1, 2).expand(batch, -1, -1)  # (B, N, d)


class ClassAttention(nn.Module):
    """Attention of the CLS token (token 0) over all tokens; the other tokens are returned unchanged."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q[:, :, :1] * k).sum(-1) * self.scale, dim=-1)  # (B, K, N)
        cls = (attn.unsqueeze(2) @ v).transpose(1, 2).reshape(b, 1, d)
        return torch.cat((self.proj(cls), x[:, 1:]), dim=1)  # the block keeps only the CLS entry


class ClassAttentionBlock(nn.Module):
    """XCiT's class-attention block, exactly: with y = LN₁(x), ``x ← x + γ₁ ⊙ [CA(y)_cls, y_patches]``; the CLS token
    is normalised, ``c ← LN₂(c)``, then ``c ← c + γ₂ ⊙ MLP(c)`` while the patch tokens are added to themselves (the
    official code concatenates them into the residual branch): only the CLS token reaches the head, but a second
    block's keys and values see the changed patches."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, gamma: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = ClassAttention(dim, heads)
        self.mlp = MLP(dim, mlp_ratio)
        self.gamma1 = nn.Parameter(torch.full((dim,), float(gamma)))
        self.gamma2 = nn.Parameter(torch.full((dim,), float(gamma)))

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.gamma1 * torch.cat((self.attn(y)[:, :1], y[:, 1:]), dim=1)
        cls = self.norm2(x[:, :1])
        return torch.cat((cls + self.gamma2 * self.mlp(cls), 2 * x[:, 1:]), dim=1)


class ToSTOfficial(TransformerModel):
    """ToST with the official vision front and back end (module docstring)."""

    Block = ToSTBlock
    Config = compose(ToSTConfig, OfficialFrontConfig, "ToSTOfficialConfig", qkv_bias=True, layer_scale=1.0,
                     dim=192, depth=12, heads=4)

    def build_front(self, c) -> None:
        self.channels, self.num_classes, self.patch = c.channels, c.num_classes, c.patch_size
        self.patch_embed = ConvStem(c.patch_size, c.channels, c.dim)
        self.pos_embeder = FourierPositions(c.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        gamma = 1.0 if c.layer_scale is None else c.layer_scale
        self.cls_attn_blocks = nn.ModuleList(ClassAttentionBlock(c.dim, c.heads, c.mlp_ratio, gamma)
                                             for _ in range(c.cls_attn_depth))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.channels or x.shape[2] % self.patch \
                or x.shape[3] % self.patch:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"ToSTOfficial expects images (batch, {self.channels}, H, W) with H and W divisible by "
                            f"{self.patch}, got {got}")
        t, (h, w) = self.patch_embed(x)
        return t + self.pos_embeder(t.shape[0], h, w)

    tokens = embed

    def forward_head(self, z: Tensor) -> Tensor:
        x = torch.cat((self.cls_token.expand(z.shape[0], -1, -1), z), dim=1)
        for block in self.cls_attn_blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])

    def features(self, x: Tensor) -> Tensor:
        """What the head's Linear reads: the CLS token after class attention and ``norm``."""
        z = self.forward_features(x)
        x = torch.cat((self.cls_token.expand(z.shape[0], -1, -1), z), dim=1)
        for block in self.cls_attn_blocks:
            x = block(x)
        return self.norm(x)[:, 0]

    def memberships(self, x: Tensor) -> list[Tensor]:
        return [rec["memberships"] for rec in self.trace(x)]


@register_model
def tost_tiny_official():
    """ToST-T as the official vision code (conv stem, Fourier positions, class attention): 5,769,328 parameters"""
    return ToSTOfficial.Config(dim=192, depth=12, heads=4, layer_scale=1.0)


@register_model
def tost_small_official():
    """ToST-S as the official vision code (conv stem, Fourier positions, class attention): 22,589,944 parameters"""
    return ToSTOfficial.Config(dim=384, depth=12, heads=8, layer_scale=1.0)
