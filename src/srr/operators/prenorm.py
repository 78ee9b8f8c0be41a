"""Pre-normalisation wrapper: ``fn(LayerNorm(x))``, with the submodule names of the authors' checkpoints."""
from __future__ import annotations

from torch import Tensor, nn


class PreNorm(nn.Module):
    """``fn(LN(x))``. Parameters are named ``norm.*`` and ``fn.*`` as in the authors' CRATE state dicts."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: Tensor, **kwargs) -> Tensor:
        return self.fn(self.norm(x), **kwargs)
