"""The random convolutional lift in front of a shift-invariant ReduNet (1-D signals or 2-D images).

``lift(x) = ReLU(k ⊛ x)``: C_out random filters of size ``kernel`` (entries drawn from N(0, 1) with a fixed seed, as
in the official code), applied as a *circular* convolution (the input is wrapped around by ``kernel − 1`` samples on
the trailing side), so that a circular shift of the input shifts the output by the same amount. The ReLU is optional.
The filters are a buffer: fixed, not trained.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, DataError

__all__ = ["Lift"]


class Lift(nn.Module):
    """Circular random convolution ``(m, C_in, *spatial) → (m, C_out, *spatial)`` over 1 or 2 spatial axes."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, spatial_dims: int, relu: bool = True,
                 seed: int = 0, std: float = 1.0):
        super().__init__()
        if spatial_dims not in (1, 2):
            raise ConfigError(f"a lift convolves over 1 or 2 spatial axes, got {spatial_dims}")
        if in_channels < 1 or out_channels < 1 or kernel < 1:
            raise ConfigError(f"invalid lift: in={in_channels}, out={out_channels}, kernel={kernel}")
        self.in_channels, self.out_channels, self.kernel = in_channels, out_channels, kernel
        self.spatial_dims, self.relu, self.seed = spatial_dims, relu, seed
        g = torch.Generator().manual_seed(seed)
        shape = (out_channels, in_channels) + (kernel,) * spatial_dims
        self.register_buffer("weight", std * torch.randn(shape, generator=g))

    def extra_repr(self) -> str:
        return (f"{self.in_channels} -> {self.out_channels}, kernel={self.kernel}, {self.spatial_dims}-D circular, "
                f"relu={self.relu}, seed={self.seed}")

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 + self.spatial_dims or x.shape[1] != self.in_channels:
            raise DataError(f"the lift expects (m, {self.in_channels}, {'T' if self.spatial_dims == 1 else 'H, W'}),"
                            f" got {tuple(x.shape)}")
        pad = (0, self.kernel - 1) * self.spatial_dims
        x = F.pad(x, pad, mode="circular") if self.kernel > 1 else x
        conv = F.conv1d if self.spatial_dims == 1 else F.conv2d
        out = conv(x, self.weight.to(x.dtype))
        return F.relu(out) if self.relu else out
