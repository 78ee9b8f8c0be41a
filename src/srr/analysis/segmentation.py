"""Emergent segmentation: attention masks and principal-component masks against ground-truth object masks, and
the large-norm outlier tokens of every layer.

On images with known object masks (``--data scenes``), for the first ``n`` test images:

* **Attention masks** (the DINO protocol). Per head k of the last layer, the read-out attention over the patches
  (the [CLS] row ``A[0, 1:]``, or the mean row for a mean-pooled model; :func:`srr.analysis.attention.cls_attention`)
  is normalised to sum 1; :func:`mass_mask` keeps the smallest set of patches holding ``fraction`` (60 %) of the
  mass (patches by decreasing attention until the running sum reaches the fraction), and the patch mask is upsampled
  to pixels (each patch its block). Score: the Jaccard index :func:`jaccard` ``|P ∩ G| / |P ∪ G|`` against the
  union G of the image's object masks; per head the mean over images, then the best head and the mean over heads.
* **PCA mask.** The patch tokens of the last layer's output (n_patches × d) of one image, centred, projected on
  their first principal direction, thresholded at 0; the sign of the direction is chosen so that the positive side
  is the smaller set of patches (objects cover less of a scene than the background), and the positive side is the
  mask.
* **At patch resolution** as well (``*_patches`` keys): the same masks on the patch grid against the patches that
  hold at least one object pixel — a patch mask cannot follow a glyph's strokes inside a patch, so the pixel scores
  are bounded well below 1 while these are not.
* **Token norms.** Per layer, the Euclidean norms of the patch tokens of the block output over all n images: their
  quantiles (5, 25, 50, 75, 95 %, maximum), the fraction of *outlier* tokens whose norm exceeds ``outlier_ratio``
  (3) times the layer's median, and where they sit: the fraction of outliers on background patches (no object pixel
  in the patch) next to the fraction of all patches that are background.

:func:`segmentation_report` writes ``segmentation.json``, ``segmentation.png`` (image, ground truth, the best head's
mask, the PCA mask, for up to 6 images) and ``token_norms.png``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..checks import check_int, check_number
from ..errors import ConfigError, DataError
from .attention import cls_attention, readout_convention
from .plotting import pyplot, save_png

__all__ = ["mass_mask", "jaccard", "upsample_mask", "pca_mask", "token_norm_statistics", "segmentation_report"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def mass_mask(attention: Tensor, fraction: float = 0.6) -> Tensor:
    """Boolean mask of the smallest set of entries holding ``fraction`` of the mass of each map (last axes
    flattened per map: ``attention`` is (…, h, w))."""
    fraction = check_number(fraction, "fraction", low=0.0, high=1.0, low_open=True)
    a = attention.double()
    if (a < 0).any() or not torch.isfinite(a).all():
        raise DataError("attention maps must be finite and non-negative")
    flat = a.flatten(-2)
    total = flat.sum(-1, keepdim=True)
    if (total <= 0).any():
        raise DataError("an attention map has no mass over the patches")
    val, idx = (flat / total).sort(dim=-1, descending=True)
    before = val.cumsum(-1) - val  # mass of the larger entries before each one
    keep_sorted = before < fraction - 1e-6  # kept while the fraction is not yet reached (up to round-off)
    keep = torch.zeros_like(keep_sorted).scatter(-1, idx, keep_sorted)
    return keep.view(attention.shape)


def upsample_mask(mask: Tensor, patch: tuple[int, int]) -> Tensor:
    """A patch-grid mask (…, gh, gw) as pixels (…, gh·ph, gw·pw): each patch its block."""
    return mask.repeat_interleave(int(patch[0]), dim=-2).repeat_interleave(int(patch[1]), dim=-1)


def jaccard(pred, truth) -> float:
    """``|P ∩ G| / |P ∪ G|`` of two boolean masks of one shape (1 when both are empty)."""
    p, g = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if p.shape != g.shape:
        raise DataError(f"masks of shapes {p.shape} and {g.shape} cannot be compared")
    union = np.logical_or(p, g).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, g).sum() / union)


def pca_mask(tokens: Tensor, grid: tuple[int, int]) -> Tensor:
    """The positive side of the first principal component of one image's patch tokens (n_patches × d), oriented
    to be the smaller side, on the patch grid."""
    z = tokens.double()
    z = z - z.mean(0)
    _, _, vh = torch.linalg.svd(z, full_matrices=False)
    proj = z @ vh[0]
    pos = proj > 0
    if int(pos.sum()) > len(pos) - int(pos.sum()):
        pos = proj < 0
    return pos.view(grid)


def _patch_foreground(fg: np.ndarray, patch: tuple[int, int]) -> np.ndarray:
    """(n, gh, gw): the patches holding at least one object pixel."""
    n, h, w = fg.shape
    ph, pw = patch
    return fg[:, : h // ph * ph, : w // pw * pw].reshape(n, h // ph, ph, w // pw, pw).any(axis=(2, 4))


@torch.no_grad()
def token_norm_statistics(outputs: list[Tensor], object_patches: np.ndarray, outlier_ratio: float = 3.0) -> list:
    """Per layer, from its block output (n, 1 + P, d) and the object patches (n, P): quantiles of the patch-token
    norms, the outlier fraction and where the outliers sit (module docstring)."""
    outlier_ratio = check_number(outlier_ratio, "outlier_ratio", low=1.0, high=1e6)
    obj = torch.from_numpy(object_patches.reshape(len(object_patches), -1))
    rows = []
    for ell, out in enumerate(outputs):
        norms = out[:, 1:].double().norm(dim=-1)  # (n, P): patch tokens, CLS excluded
        flat = norms.flatten()
        median = float(flat.median())
        outliers = norms > outlier_ratio * median
        count = int(outliers.sum())
        rows.append({"layer": ell + 1, "median": median,
                     "quantiles": {f"{q:g}": float(flat.quantile(q)) for q in QUANTILES}, "max": float(flat.max()),
                     "outlier_fraction": count / flat.numel(),
                     "outliers_on_background": (int((outliers & ~obj).sum()) / count) if count else None,
                     "background_fraction": float((~obj).double().mean())})
    return rows


def segmentation_report(src, data, out, n: int = 64, fraction: float = 0.6, outlier_ratio: float = 3.0) -> dict:
    """Score ``src``'s attention and PCA masks on the first ``n`` test scenes of ``data`` and write the report into
    the folder ``out`` (published whole). Returns the report."""
    from ..io import atomic_write_json
    from ..runfolder import publish_folder

    scenes = getattr(data, "scenes", None)
    if scenes is None:
        raise ConfigError(f"{data.spec} has no object masks: srr segment needs --data scenes[:OPTIONS]")
    model = src.model
    for need in ("attention_maps", "trace", "patch_hw"):
        if not hasattr(model, need):
            raise ConfigError(f"{type(model).__name__} is not a patch transformer with attention maps: nothing to "
                              "segment")
    n = min(check_int(n, "--images", low=1, high=1 << 20), len(data.test_set))
    x = data.test_set.__getitems__(list(range(n)))[0]
    fg = scenes["test"].foreground()[:n]
    model.eval()
    maps = cls_attention(model, x)[-1]  # (n, K, gh, gw), last layer
    grid, patch = tuple(maps.shape[-2:]), tuple(model.patch_hw)
    masks = upsample_mask(mass_mask(maps, fraction), patch).numpy()  # (n, K, H, W)
    heads = maps.shape[1]
    per_head = [[jaccard(masks[i, k], fg[i]) for i in range(n)] for k in range(heads)]
    head_means = [float(np.mean(r)) for r in per_head]
    best = int(np.argmax(head_means))
    with torch.no_grad():
        trace = model.trace(x.to(next(model.parameters()).device))
    outputs = [rec["output"].float().cpu() for rec in trace]
    pca = torch.stack([pca_mask(outputs[-1][i, 1:], grid) for i in range(n)])
    pca_px = upsample_mask(pca, patch).numpy()
    pca_j = [jaccard(pca_px[i], fg[i]) for i in range(n)]
    fg_patches = _patch_foreground(fg, patch)
    grid_masks = mass_mask(maps, fraction).numpy()
    patch_heads = [float(np.mean([jaccard(grid_masks[i, k], fg_patches[i]) for i in range(n)])) for k in range(heads)]
    pca_patches = float(np.mean([jaccard(pca[i].numpy(), fg_patches[i]) for i in range(n)]))
    norms = token_norm_statistics(outputs, fg_patches, outlier_ratio)
    report = {"model": src.name, "source": str(src.path or src.name), "data": data.spec, "images": n,
              "mass_fraction": fraction, "convention": readout_convention(model), "grid": list(grid),
              "patch": list(patch), "jaccard_per_head": head_means, "best_head": best + 1,
              "jaccard_best_head": head_means[best], "jaccard_mean_over_heads": float(np.mean(head_means)),
              "jaccard_pca": float(np.mean(pca_j)), "jaccard_per_head_patches": patch_heads,
              "jaccard_best_head_patches": max(patch_heads),
              "jaccard_mean_over_heads_patches": float(np.mean(patch_heads)), "jaccard_pca_patches": pca_patches,
              "outlier_ratio": outlier_ratio, "token_norms": norms,
              "outlier_fraction_last_layer": norms[-1]["outlier_fraction"]}
    images = data.unnormalize(x)[:, 0].numpy()
    with publish_folder(out) as tmp:
        _plot_masks(images, fg, masks[:, best], pca_px, tmp / "segmentation.png",
                    f"{src.name}: best head {best + 1} (J {head_means[best]:.3f}), PCA (J {report['jaccard_pca']:.3f})")
        _plot_norms(norms, tmp / "token_norms.png", f"{src.name}: patch-token norms per layer")
        atomic_write_json(tmp / "segmentation.json", report)
    return report


def _plot_masks(images, fg, best, pca, path, title) -> None:
    plt = pyplot()
    rows = min(6, len(images))
    fig, axes = plt.subplots(rows, 4, figsize=(6.4, 1.6 * rows), squeeze=False)
    for i in range(rows):
        for j, (img, name) in enumerate(((images[i], "image"), (fg[i], "ground truth"), (best[i], "best head"),
                                         (pca[i], "PCA"))):
            ax = axes[i, j]
            ax.imshow(images[i], cmap="gray")
            if j:
                ax.imshow(np.ma.masked_where(~img.astype(bool), img), cmap="autumn", alpha=0.6, vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=8)
    save_png(fig, path)


def _plot_norms(norms, path, title) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    layers = [r["layer"] for r in norms]
    for q in ("0.05", "0.5", "0.95"):
        a.plot(layers, [r["quantiles"][q] for r in norms], marker="o", label=f"{float(q):.0%} quantile")
    a.plot(layers, [r["max"] for r in norms], marker="x", label="max")
    a.set_xlabel("layer"), a.set_ylabel("patch-token norm"), a.legend(fontsize=7)
    b.bar(layers, [r["outlier_fraction"] for r in norms])
    b.set_xlabel("layer"), b.set_ylabel("fraction of outlier tokens")
    fig.suptitle(title, fontsize=9)
    save_png(fig, path)
