"""Attention maps of any model that forms them, per layer and head: over the patches of an image, or over the tokens
of a text.

A model qualifies if it exposes ``attention_maps(x)`` → one tensor (B, K, N, N) per layer, row-stochastic
(``softmax(w wᵀ · scale)`` for MSSA, ``softmax(q kᵀ · scale)`` for MHSA). For an image model the CLS token is at
index 0 and the patches follow in the row-major order of the patch grid (``b c (h p1) (w p2) -> b (h w) …``). The map
of head k in layer ℓ is the row of the token the head reads out, without its CLS entry, reshaped to the patch grid:

* a model that reads out its CLS token (``pool="cls"``): the CLS row ``A^ℓ_k[0, 1:]``, a distribution over patches up
  to the mass the CLS token keeps for itself;
* a model that pools by the mean of all tokens (the CPU demo): its CLS token never reaches the head, so its row shows
  nothing the prediction uses; the map is then the mean of all rows, ``(1/N) Σ_i A^ℓ_k[i, 1:]`` — where the pooled
  output reads from — and the report says so.

Shown upsampled by the patch size (nearest, one block per patch, as the authors' figures), with a colour bar, and as
overlays on the un-normalised input image. Images of another size than the training one are accepted (positions are
interpolated bicubically); :func:`resize_images` resizes inputs for that purpose. For a language model the maps are
the full (causal) T × T patterns of one window of text.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from .plotting import save_png

__all__ = ["cls_attention", "token_attention", "upsample_maps", "attention_summary", "plot_attention_grid",
           "plot_attention_overlay", "resize_images", "readout_convention", "attention_report"]


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


def readout_convention(model: nn.Module) -> str:
    if getattr(model, "pool", "cls") == "mean":
        return ("mean of all tokens' attention rows over the patches, (1/N) sum_i A[i, 1:], per layer and head, on "
                "the patch grid: this model pools by the mean, so its CLS token does not reach the head")
    return "CLS row A[0, 1:] of softmax attention per layer and head, reshaped to the patch grid"


@torch.no_grad()
def cls_attention(model: nn.Module, x: Tensor) -> Tensor:
    """Read-out attention over the patch grid: tensor (L, B, K, gh, gw) with ``out[ℓ, b, k]`` the CLS row
    ``A^ℓ_k[0, 1:]`` (or the mean row, for a mean-pooled model; see the module docstring) reshaped.

    ``x`` is a batch of (normalised) images. Raises :class:`ConfigError` when the model forms no attention matrix.
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
        rows = a[:, :, :, 1:].mean(dim=2) if getattr(model, "pool", "cls") == "mean" else a[:, :, 0, 1:]
        out.append(rows.reshape(a.shape[0], a.shape[1], gh, gw).float().cpu())
    return torch.stack(out)


@torch.no_grad()
def token_attention(model: nn.Module, ids: Tensor) -> Tensor:
    """The attention patterns (L, K, T, T) of a language model on one window of token ids (1, T)."""
    if not hasattr(model, "attention_maps"):
        raise ConfigError(f"{type(model).__name__} exposes no attention_maps: it has no T x T attention to show")
    model.eval()
    device = next(model.parameters()).device
    return torch.stack([a[0].float().cpu() for a in model.attention_maps(ids.to(device))])


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


def plot_attention_grid(maps: Tensor, path, title: str = "", xlabel: str = "") -> None:
    """PNG grid of maps (L, K, H, W): a row per layer, a column per head, one colour scale (viridis) for a whole
    layer, with its colour bar, so heads of a layer compare directly."""
    fig, axes = _figure(maps.shape[0], maps.shape[1])
    for ell in range(maps.shape[0]):
        vmax = float(maps[ell].max()) or 1.0
        for k in range(maps.shape[1]):
            im = axes[ell, k].imshow(maps[ell, k].numpy(), cmap="viridis", interpolation="nearest", vmin=0.0,
                                     vmax=vmax)
            if ell == 0:
                axes[ell, k].set_title(f"head {k + 1}", fontsize=8)
        axes[ell, 0].set_ylabel(f"layer {ell + 1}", fontsize=8)
        fig.colorbar(im, ax=list(axes[ell]), fraction=0.02, pad=0.01)
    if xlabel:
        fig.text(0.5, 0.005, xlabel, ha="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    save_png(fig, path, tight=False)


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
            ax.imshow(maps[ell, k].numpy(), cmap="magma", alpha=alpha, interpolation="nearest")
            if ell == 0:
                ax.set_title(f"head {k + 1}", fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    save_png(fig, path)


def attention_report(src, data, out, index: int = 0, image_size: int | None = None) -> dict:
    """Write ``attention.json`` and the maps of one held-out input of ``data`` into the folder ``out`` (published
    whole): for an image model ``attention_grid.png`` and ``attention_overlay.png`` of test image ``index``; for a
    language model ``attention_grid.png`` of validation window ``index``. Returns the report."""
    from ..checks import check_int, check_memory
    from ..io import atomic_write_json
    from ..runfolder import publish_folder

    if src.task == "lm":
        from ..data.windows import validation_windows

        c, starts = validation_windows(len(data.val), getattr(src.model, "context", 128))
        check_int(index, "--index", low=0, high=len(starts) - 1)
        ids = data.val[int(starts[index]):int(starts[index]) + c].unsqueeze(0)
        maps = token_attention(src.model, ids)
        title = f"{src.name} ({src.label}), {data.spec} validation window {index}"
        heads = attention_summary_tokens(maps)
        with publish_folder(out) as tmp:
            plot_attention_grid(maps, tmp / "attention_grid.png", title, xlabel="key position (row: query)")
            report = {"title": title, "data": data.spec, "index": index, "tokens": c,
                      "convention": "softmax attention (query rows, key columns) of one validation window",
                      "heads": heads}
            atomic_write_json(tmp / "attention.json", report)
        return report
    n = len(data.test_set)
    check_int(index, "--index", low=0, high=n - 1)
    x = data.test_set.__getitems__([index])[0]
    label = int(data.test_set.__getitems__([index])[1][0])
    if image_size is not None:
        check_int(image_size, "--image-size", low=1, high=1 << 15)
        patch = getattr(src.model, "patch_hw", (1, 1))
        tokens = (image_size // patch[0]) * (image_size // patch[1]) + 1
        heads, depth = getattr(src.model, "heads", 1), getattr(src.model, "depth", 1)
        check_memory(4 * (x.shape[1] * image_size ** 2 + heads * depth * tokens ** 2 + tokens * src.model.dim * 8),
                     f"attention maps at --image-size {image_size}")
        x = resize_images(x, image_size)
    maps = cls_attention(src.model, x)[:, 0]  # (L, K, gh, gw)
    patch = getattr(src.model, "patch_hw", (x.shape[2] // maps.shape[-2], x.shape[3] // maps.shape[-1]))
    up = upsample_maps(maps, patch)
    title = f"{src.name} ({src.label}), {data.spec} test image {index}, label {label}"
    report = {"title": title, "data": data.spec, "index": index, "label": label, "image_size": list(x.shape[2:]),
              "grid": list(maps.shape[-2:]), "patch": list(patch), "convention": readout_convention(src.model),
              "heads": attention_summary(maps)}
    if getattr(src.model, "pool", None) == "mean":
        report["note"] = "this model pools by the mean of all tokens: its CLS token does not reach the head"
    with publish_folder(out) as tmp:
        plot_attention_grid(up, tmp / "attention_grid.png", title)
        plot_attention_overlay(data.unnormalize(x)[0], up, tmp / "attention_overlay.png", title)
        atomic_write_json(tmp / "attention.json", report)
    return report


def attention_summary_tokens(maps: Tensor) -> list[dict]:
    """Per layer and head of text patterns (L, K, T, T): the mean attention to the previous token and to the first
    token, and the normalised entropy of the rows (1 = uniform over the visible prefix)."""
    rows = []
    t = maps.shape[-1]
    for ell in range(maps.shape[0]):
        for k in range(maps.shape[1]):
            a = maps[ell, k].double()
            prev = float(a.diagonal(offset=-1).mean()) if t > 1 else 0.0
            first = float(a[:, 0].mean())
            visible = torch.arange(1, t + 1, dtype=torch.float64)
            ent = -(a * a.clamp_min(1e-300).log()).sum(-1)
            norm = torch.where(visible > 1, ent / visible.log().clamp_min(1e-12), torch.zeros_like(ent))
            rows.append({"layer": ell + 1, "head": k + 1, "previous_token": prev, "first_token": first,
                         "entropy": float(norm[1:].mean()) if t > 1 else 0.0})
    return rows
