"""Data augmentation on batches of standardised image tensors (B, C, H, W), each switched on by its own setting.

All randomness comes from one ``torch.Generator`` (on the CPU; the draws are moved to the images' device), so a
run is reproducible and resumable from the generator's state. Geometric ops are affine resamplings
(``grid_sample``, zeros outside the image: the data set's mean colour after standardisation); photometric ops undo
the standardisation, act on pixels in [0, 1] and standardise again.

* ``shift``: translation by up to ``s`` pixels, edges replicated (the CPU demo's augmentation).
* ``crop_scale``: random resized crop — area fraction ~ U[crop_scale, 1], aspect ratio log-uniform in [3/4, 4/3],
  resampled to the full size.
* ``flip``: horizontal flip with probability ½.
* ``randaugment`` N, ``randaugment_magnitude`` M: N ops per image, drawn uniformly from identity, brightness,
  contrast, colour, solarize, posterize, autocontrast, rotate, shear-x/y and translate-x/y at strength M/30
  (as Cubuk et al., with random signs).
* ``mixup`` α / ``cutmix`` α: mix each image with the batch reversed, λ ~ Beta(α, α); targets become the same mixture
  of (label-smoothed) one-hot vectors. With both on, each batch picks one with probability ½.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["shift_augment", "random_resized_crop", "random_flip", "rand_augment", "mix_batch", "Augmenter",
           "resize_batch"]


def _u(n: int, g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def shift_augment(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by a random integer offset in [-max_shift, max_shift]² (edges replicated)."""
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = (dy.view(b, 1) + torch.arange(h)).view(b, 1, h, 1).expand(b, x.shape[1], h, w + 2 * max_shift)
    out = padded.gather(2, rows.to(x.device))
    cols = (dx.view(b, 1) + torch.arange(w)).view(b, 1, 1, w).expand(b, x.shape[1], h, w)
    return out.gather(3, cols.to(x.device))


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_resized_crop(x: Tensor, g: torch.Generator, min_scale: float, ratio=(3 / 4, 4 / 3)) -> Tensor:
    """Crop a random box of area fraction in [min_scale, 1] and aspect ratio in ``ratio``; resample to full size."""
    b = x.shape[0]
    area = _u(b, g, min_scale, 1.0)
    log_r = _u(b, g, math.log(ratio[0]), math.log(ratio[1]))
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    cx, cy = w / 2 + _u(b, g) * (1 - w), h / 2 + _u(b, g) * (1 - h)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, 2 * cx - 1, h, 2 * cy - 1
    return _affine(x, theta)


def random_flip(x: Tensor, g: torch.Generator) -> Tensor:
    flip = (torch.rand(x.shape[0], generator=g) < 0.5).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


_OPS = ("identity", "brightness", "contrast", "color", "solarize", "posterize", "autocontrast",
        "rotate", "shear_x", "shear_y", "translate_x", "translate_y")


def _photometric(p: Tensor, op: str, s: Tensor) -> Tensor:
    """Op ``op`` on pixels ``p`` in [0, 1] with signed strengths ``s`` (B,) in [-1, 1]."""
    s4 = s.view(-1, 1, 1, 1).to(p.device, p.dtype)
    grey = p.mean(dim=1, keepdim=True)
    if op == "brightness":
        return p * (1 + 0.9 * s4)
    if op == "contrast":
        return grey.mean(dim=(2, 3), keepdim=True) + (p - grey.mean(dim=(2, 3), keepdim=True)) * (1 + 0.9 * s4)
    if op == "color":
        return grey + (p - grey) * (1 + 0.9 * s4)
    if op == "solarize":
        return torch.where(p >= 1 - s4.abs(), 1 - p, p)
    if op == "posterize":
        levels = 2.0 ** (8 - torch.round(4 * s4.abs()))
        return torch.floor(p * (levels - 1) + 0.5) / (levels - 1)
    if op == "autocontrast":
        lo, hi = p.amin(dim=(2, 3), keepdim=True), p.amax(dim=(2, 3), keepdim=True)
        return (p - lo) / (hi - lo).clamp_min(1e-3)
    return p


def _geometric(b: int, op: str, s: Tensor) -> Tensor:
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    if op == "rotate":
        a = s * math.radians(30)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
    elif op == "shear_x":
        theta[:, 0, 1] = 0.3 * s
    elif op == "shear_y":
        theta[:, 1, 0] = 0.3 * s
    elif op == "translate_x":
        theta[:, 0, 2] = 2 * 0.45 * s
    elif op == "translate_y":
        theta[:, 1, 2] = 2 * 0.45 * s
    return theta


def rand_augment(x: Tensor, g: torch.Generator, n: int, magnitude: int, mean: Tensor, std: Tensor) -> Tensor:
    """``n`` ops per image from :data:`_OPS`, strength ``magnitude / 30`` with a random sign."""
    b = x.shape[0]
    mean, std = mean.to(x.device, x.dtype), std.to(x.device, x.dtype)
    for _ in range(n):
        choice = torch.randint(0, len(_OPS), (b,), generator=g)
        sign = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
        strength = sign * magnitude / 30.0
        for k, op in enumerate(_OPS[1:], start=1):
            mask = choice == k
            if not bool(mask.any()):
                continue
            s = torch.where(mask, strength, torch.zeros(b))
            if op in ("rotate", "shear_x", "shear_y", "translate_x", "translate_y"):
                moved = _affine(x, _geometric(b, op, s))
            else:
                moved = (_photometric((x * std + mean).clamp(0, 1), op, s).clamp(0, 1) - mean) / std
            x = torch.where(mask.to(x.device).view(-1, 1, 1, 1), moved, x)
    return x


def _beta(alpha: float, g: torch.Generator) -> float:
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mix_batch(x: Tensor, target: Tensor, g: torch.Generator, mixup: float, cutmix: float) -> tuple[Tensor, Tensor]:
    """Mixup or cutmix of the batch with itself reversed; ``target`` (B, K) probabilities are mixed the same way."""
    use_cutmix = cutmix > 0 and (mixup <= 0 or float(torch.rand(1, generator=g)) < 0.5)
    lam = _beta(cutmix if use_cutmix else mixup, g)
    other = x.flip(0)
    if use_cutmix:
        h, w = x.shape[2:]
        ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(torch.randint(0, h, (1,), generator=g)), int(torch.randint(0, w, (1,), generator=g))
        y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2 + ch % 2, h), max(cx - cw // 2, 0), min(cx + cw // 2 + cw % 2, w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = other[:, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        x = lam * x + (1 - lam) * other
    return x, lam * target + (1 - lam) * target.flip(0)


def resize_batch(x: Tensor, size: int) -> Tensor:
    if size <= 0 or tuple(x.shape[2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[2])


class Augmenter:
    """The augmentations an image objective's settings switch on, in a fixed order: resize, crop, flip,
    shift, RandAugment, mixup/cutmix. ``__call__(x, y, g)`` returns the images and the target (int labels, or
    probabilities (B, K) when mixing)."""

    def __init__(self, config, mean, std, num_classes: int):
        self.c, self.k = config, num_classes
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    @property
    def mixing(self) -> bool:
        return getattr(self.c, "mixup", 0.0) > 0 or getattr(self.c, "cutmix", 0.0) > 0

    def __call__(self, x: Tensor, y: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        c = self.c
        x = resize_batch(x, c.resize)
        if c.crop_scale > 0:
            x = random_resized_crop(x, g, c.crop_scale)
        if c.flip:
            x = random_flip(x, g)
        x = shift_augment(x, c.shift, g)
        if c.randaugment > 0:
            x = rand_augment(x, g, c.randaugment, c.randaugment_magnitude, self.mean, self.std)
        if not self.mixing:
            return x, y
        smooth = getattr(c, "label_smoothing", 0.0)
        target = F.one_hot(y, self.k).to(x.dtype) * (1 - smooth) + smooth / self.k
        return mix_batch(x, target, g, c.mixup, c.cutmix)

    def eval(self, x: Tensor) -> Tensor:
        return resize_batch(x, self.c.resize)
