"""Shared pieces of the vision models: patch tokens with a CLS token and positional embedding, and a head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from ..operators import PatchEmbedding, check_image_config

__all__ = ["VisionBackbone"]


class VisionBackbone(nn.Module):
    """Common image front and back of CRATE-like models, with the authors' parameter names.

    Subclasses build ``self.transformer`` (with ``.layers``) and implement ``encode(tokens)``.
    ``to_patch_embedding``, ``pos_embedding`` (1, N+1, dim), ``cls_token`` (1, 1, dim) and ``mlp_head``
    (LayerNorm, Linear) match the keys of REFERENCE §2.
    """

    def __init__(self, image_size, patch_size, num_classes: int, dim: int, channels: int, pool: str,
                 emb_dropout: float):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ConfigError(f"pool must be 'cls' or 'mean', got {pool!r}")
        if num_classes < 1 or dim < 1:
            raise ConfigError(f"num_classes and dim must be positive, got {num_classes} and {dim}")
        self.image_hw, self.patch_hw, num_patches = check_image_config(image_size, patch_size, channels)
        self.channels, self.pool, self.dim, self.num_classes = channels, pool, dim, num_classes
        self.to_patch_embedding = PatchEmbedding(self.patch_hw, channels, dim)
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, columns)."""
        return self.image_hw[0] // self.patch_hw[0], self.image_hw[1] // self.patch_hw[1]

    def check_input(self, x: Tensor) -> tuple[int, int]:
        """Check the channels and that the image is a whole number of patches; returns the patch grid.

        Any such size is accepted: positions are interpolated for a grid other than the training one
        (:meth:`position_embedding`)."""
        ph, pw = self.patch_hw
        if x.dim() != 4 or x.shape[1] != self.channels or x.shape[2] % ph or x.shape[3] % pw or x.shape[2] < ph \
                or x.shape[3] < pw:
            expected = (self.channels, *self.image_hw)
            raise DataError(
                f"{type(self).__name__} expects images of shape (batch, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(x.shape)} (other sizes divisible by the patch {ph}x{pw} work too)"
            )
        return x.shape[2] // ph, x.shape[3] // pw

    def position_embedding(self, grid: tuple[int, int]) -> Tensor:
        """Positional embedding (1, 1 + gh·gw, dim) for a patch grid ``grid``: the learned one at the training grid,
        else its patch part resized bicubically (``align_corners=False``) as a (dim, gh, gw) image; the CLS position
        is kept (REFERENCE §2: "positional embeddings are interpolated bicubically for other image sizes")."""
        grid = (int(grid[0]), int(grid[1]))
        if grid == self.grid:
            return self.pos_embedding
        gh, gw = self.grid
        cls_pos, patch_pos = self.pos_embedding[:, :1], self.pos_embedding[:, 1:]
        img = patch_pos.reshape(1, gh, gw, self.dim).permute(0, 3, 1, 2)
        img = F.interpolate(img, size=grid, mode="bicubic", align_corners=False)
        return torch.cat((cls_pos, img.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], self.dim)), dim=1)

    def tokens(self, x: Tensor) -> Tensor:
        """Patch tokens with the CLS token prepended and positions added: (B, N+1, dim)."""
        grid = self.check_input(x)
        t = self.to_patch_embedding(x)
        cls = self.cls_token.expand(t.shape[0], -1, -1)
        return self.dropout(torch.cat((cls, t), dim=1) + self.position_embedding(grid))

    def encode(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        """Tokens after the last layer: (B, N+1, dim)."""
        return self.encode(self.tokens(x))

    def pool_tokens(self, z: Tensor) -> Tensor:
        return z.mean(dim=1) if self.pool == "mean" else z[:, 0]

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp_head(self.pool_tokens(self.forward_features(x)))
