"""Named hook points: identity modules at which a forward hook records or replaces an activation."""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["HookPoint"]


class HookPoint(nn.Module):
    """The identity, as a module so that forward hooks can record or replace the activation passing through. It
    holds no parameters, so state dicts keep their key names."""

    def forward(self, x: Tensor) -> Tensor:
        return x
