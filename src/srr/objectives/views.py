"""Multi-crop views of a batch of standardised images, on tensors: the inputs of the self-supervised objectives.

Each image of a batch (B, C, H, W) gives ``2`` *global* views and ``local`` *local* views:

* a view is a random resized crop — a box of area fraction ~ U[lo, hi] of the image and aspect ratio log-uniform in
  [3/4, 4/3], its centre uniform where the box fits — resampled bilinearly to the view's size (``grid_sample``,
  ``align_corners=False``); global views have area fractions in [``global_min``, 1] and the image's size, local views
  area fractions in [``local_min``, ``local_max``] and a smaller size (a whole number of the model's patches);
* then a horizontal flip with probability ½ (``flip``) and additive Gaussian noise of standard deviation ``noise``
  (in standardised units; 0: none).

Every random number comes from one ``torch.Generator`` on the CPU (the engine's augmentation stream), drawn in a
fixed order, so a resumed run draws the same views.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["resized_crop", "multi_crop"]


def _u(n: int, g: torch.Generator, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def resized_crop(x: Tensor, g: torch.Generator, scale: tuple[float, float], size: tuple[int, int],
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Tensor:
    """A random box of each image (area fraction in ``scale``, aspect ratio in ``ratio``) resampled to ``size``."""
    b = x.shape[0]
    area = _u(b, g, scale[0], scale[1])
    log_r = _u(b, g, math.log(ratio[0]), math.log(ratio[1]))
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    cx, cy = w / 2 + _u(b, g, 0.0, 1.0) * (1 - w), h / 2 + _u(b, g, 0.0, 1.0) * (1 - h)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, 2 * cx - 1, h, 2 * cy - 1
    grid = F.affine_grid(theta.to(x.device, x.dtype), [b, x.shape[1], int(size[0]), int(size[1])],
                         align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _finish(v: Tensor, g: torch.Generator, flip: bool, noise: float) -> Tensor:
    if flip:
        mask = (torch.rand(v.shape[0], generator=g) < 0.5).to(v.device).view(-1, 1, 1, 1)
        v = torch.where(mask, v.flip(-1), v)
    if noise > 0:
        v = v + noise * torch.randn(v.shape, generator=g).to(v.device, v.dtype)
    return v


def multi_crop(x: Tensor, g: torch.Generator, *, local: int, local_size: tuple[int, int], global_min: float = 0.4,
               local_min: float = 0.05, local_max: float = 0.4, flip: bool = True,
               noise: float = 0.0) -> list[Tensor]:
    """``[global_1, global_2, local_1, …, local_M]``: 2 + ``local`` views of the batch ``x`` (module docstring)."""
    size = tuple(x.shape[-2:])
    views = [_finish(resized_crop(x, g, (global_min, 1.0), size), g, flip, noise) for _ in range(2)]
    views += [_finish(resized_crop(x, g, (local_min, local_max), local_size), g, flip, noise) for _ in range(local)]
    return views
