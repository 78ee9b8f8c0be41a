"""CLS-token attention maps of any attention model, per layer and head (REFERENCE §2, "Attention maps").

A model qualifies if it exposes ``attention_maps(x)`` → one tensor (B, K, N+1, N+1) per layer, row-stochastic
(``softmax(w wᵀ · scale)`` for MSSA, ``softmax(q kᵀ · scale)`` for MHSA), with the CLS token at index 0 and the N patch
tokens in the row-major order of the patch grid (``b c (h p1) (w p2) -> b (h w) …``). The map of head k in layer ℓ is
the CLS row without its CLS entry, ``A^ℓ_k[0, 1:]``, reshaped to the patch grid (gh, gw): a distribution over patches
up to the mass ``A^ℓ_k[0, 0]`` the CLS token keeps for itself. Shown upsampled by the patch size (nearest, one block
per patch, as the authors' figures) and as overlays on the un-normalised input image.

Images of another size than the training one are accepted by :class:`~srr.models.vision.VisionBackbone`, which
interpolates the positional embedding bicubically; :func:`resize_images` resizes inputs for that purpose.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from .plotting import save_png

__all__ = ["cls_attention", "upsample_maps", "attention_summary", "plot_attention_grid", "plot_attention_overlay",
           "resize_images"]


def _grid_of(model: nn.Module, x: Tensor, n_patches: int) -> tuple[int, int]:
    patch = getattr(model, "patch_hw", None)
    if patch is not None and x.dim() == 4:
        gh, gw = x.shape[2] // patch[0], x.shape[3] // patch[1]
        if gh * gw == n_patches:
            return gh, gw
    side = math.isqrt(n_patches)
    if side * side != n_patches:
        raise DataError(f"cannot arrange {n_patches} patch tokens on a grid: the model exposes no patch size")
    return side, side


@torch.no_grad()
def cls_attention(model: nn.Module, x: Tensor) -> Tensor:
    """CLS attention over the patch grid: tensor (L, B, K, gh, gw) with ``out[ℓ, b, k] = A^ℓ_k[0, 1:]`` reshaped.

    ``x`` is a batch of (normalised) images. Raises :class:`ConfigError` when the model has no ``attention_maps``.
    """
    if not hasattr(model, "attention_maps"):
        raise ConfigError(f"{type(model).__name__} exposes no attention_maps(x): it has no N x N attention to show")
    model.eval()
    device = next(model.parameters()).device
    maps = model.attention_maps(x.to(device))
    if not maps:
        raise ConfigError(f"{type(model).__name__} returned no attention maps")
    out = []
    for ell, a in enumerate(maps):
        if a.dim() != 4 or a.shape[-1] != a.shape[-2] or a.shape[-1] < 2:
            raise ConfigError(f"layer {ell + 1}: attention maps must be (B, K, N+1, N+1), got {tuple(a.shape)}")
        gh, gw = _grid_of(model, x, a.shape[-1] - 1)
        out.append(a[:, :, 0, 1:].reshape(a.shape[0], a.shape[1], gh, gw).float().cpu())
    return torch.stack(out)


def upsample_maps(maps: Tensor, patch_hw: tuple[int, int]) -> Tensor:
    """Nearest upsampling of (…, gh, gw) maps by the patch size: one constant block per patch, (…, gh·ph, gw·pw)."""
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:])
    up = F.interpolate(flat, scale_factor=tuple(float(p) for p in patch_hw), mode="nearest")
    return up.reshape(*lead, *up.shape[-2:])


def resize_images(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bicubic resize of a batch of images (B, C, H, W) to ``size`` (to look at a model at another resolution)."""
    size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(size) < 1:
        raise ConfigError(f"image size must be positive, got {size}")
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


def attention_summary(maps: Tensor) -> list[dict]:
    """Per layer and head for one image (maps (L, K, gh, gw)): CLS mass on patches, normalised entropy, peak patch.

    ``entropy`` is H(p)/log(gh·gw) of the CLS row renormalised over the patches: 1 for a uniform map, 0 for one patch.
    """
    rows = []
    n = maps.shape[-1] * maps.shape[-2]
    for ell in range(maps.shape[0]):
        for k in range(maps.shape[1]):
            m = maps[ell, k].double()
            mass = float(m.sum())
            p = (m / m.sum()).flatten() if mass > 0 else torch.full((n,), 1.0 / n, dtype=torch.float64)
            h = float(-(p * p.clamp_min(1e-300).log()).sum() / math.log(n)) if n > 1 else 0.0
            peak = int(p.argmax())
            rows.append({"layer": ell + 1, "head": k + 1, "patch_mass": mass, "entropy": h,
                         "peak": [peak // maps.shape[-1], peak % maps.shape[-1]],
                         "map": [[round(float(v), 6) for v in r] for r in m]})
    return rows


def _figure(rows: int, cols: int, size: float = 1.6):
    from .plotting import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.6, size * rows + 0.4), squeeze=False)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    return fig, axes


def plot_attention_grid(maps: Tensor, path, title: str = "") -> None:
    """PNG grid of upsampled maps (L, K, H, W): a row per layer, a column per head, each on its own colour scale."""
    fig, axes = _figure(maps.shape[0], maps.shape[1])
    for ell in range(maps.shape[0]):
        for k in range(maps.shape[1]):
            axes[ell, k].imshow(maps[ell, k].numpy(), cmap="inferno", interpolation="nearest")
            if ell == 0:
                axes[ell, k].set_title(f"head {k + 1}", fontsize=8)
        axes[ell, 0].set_ylabel(f"layer {ell + 1}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    save_png(fig, path)


def _display(image: Tensor):
    """(C, H, W) un-normalised image → array for imshow (grey for one channel), clipped to [0, 1] after min-max."""
    img = image.detach().float()
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else torch.zeros_like(img)
    return (img[0].numpy(), "gray") if img.shape[0] == 1 else (img.permute(1, 2, 0).numpy(), None)


def plot_attention_overlay(image: Tensor, maps: Tensor, path, title: str = "", alpha: float = 0.55) -> None:
    """PNG: per layer, the input image then every head's upsampled map (L, K, H, W) laid over it."""
    if tuple(image.shape[-2:]) != tuple(maps.shape[-2:]):
        raise DataError(f"image {tuple(image.shape)} and maps {tuple(maps.shape)} differ in size")
    arr, cmap = _display(image)
    fig, axes = _figure(maps.shape[0], maps.shape[1] + 1)
    for ell in range(maps.shape[0]):
        axes[ell, 0].imshow(arr, cmap=cmap)
        axes[ell, 0].set_ylabel(f"layer {ell + 1}", fontsize=8)
        for k in range(maps.shape[1]):
            ax = axes[ell, k + 1]
            ax.imshow(arr, cmap=cmap)
            ax.imshow(maps[ell, k].numpy(), cmap="jet", alpha=alpha, interpolation="nearest")
            if ell == 0:
                ax.set_title(f"head {k + 1}", fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    save_png(fig, path)
