"""Patch embedding of the authors' CRATE: rearrange into patches, LayerNorm, Linear, LayerNorm (docs/operators.md)."""
from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError


def pair(v) -> tuple[int, int]:
    """``(v, v)`` for an int, the tuple itself for a pair."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ConfigError(f"expected an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


class Patchify(nn.Module):
    """``b c (h p1) (w p2) -> b (h w) (p1 p2 c)``: channel last inside a patch, as the authors' einops pattern."""

    def __init__(self, patch_size):
        super().__init__()
        self.ph, self.pw = pair(patch_size)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        gh, gw = h // self.ph, w // self.pw
        x = x.reshape(b, c, gh, self.ph, gw, self.pw).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, gh * gw, self.ph * self.pw * c)


def check_image_config(image_size, patch_size, channels: int) -> tuple[tuple[int, int], tuple[int, int], int]:
    """Validate image and patch sizes; returns ``(image_hw, patch_hw, number_of_patches)``."""
    (ih, iw), (ph, pw) = pair(image_size), pair(patch_size)
    if min(ih, iw, ph, pw) < 1 or channels < 1:
        raise ConfigError(f"sizes must be positive: image {ih}x{iw}, patch {ph}x{pw}, channels {channels}")
    if ih % ph or iw % pw:
        raise ConfigError(f"image size {ih}x{iw} is not divisible by the patch size {ph}x{pw}")
    if ph * pw * channels < 2:
        raise ConfigError(
            f"a patch of {ph}x{pw} on {channels} channel(s) holds a single value: the patch LayerNorm would map "
            "every patch to zero; use a larger patch or more channels"
        )
    return (ih, iw), (ph, pw), (ih // ph) * (iw // pw)


class PatchEmbedding(nn.Sequential):
    """``Sequential(Patchify, LayerNorm(c·p²), Linear(c·p², dim), LayerNorm(dim))`` — state-dict keys ``1.*``, ``2.*``,
    ``3.*`` as ``to_patch_embedding`` of the authors' code."""

    def __init__(self, patch_size, channels: int, dim: int):
        ph, pw = pair(patch_size)
        patch_dim = ph * pw * channels
        super().__init__(Patchify(patch_size), nn.LayerNorm(patch_dim), nn.Linear(patch_dim, dim), nn.LayerNorm(dim))
