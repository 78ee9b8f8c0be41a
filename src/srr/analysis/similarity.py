"""Cosine similarity of features grouped by class: the ReduNet / MCR² picture of class subspaces becoming orthogonal.

``cosine_matrix`` gives ``|⟨z_a, z_b⟩| / (‖z_a‖ ‖z_b‖)`` with samples sorted by class; ``class_cosines`` the mean of
that absolute cosine over pairs of samples within one class and over pairs from different classes (the between-class
value falls towards 0 as classes spread onto orthogonal subspaces).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks
from ..checks import check_allocation, check_int
from ..errors import DataError

__all__ = ["cosine_matrix", "class_cosines", "plot_cosine_matrices"]


def _unit(z: Tensor) -> Tensor:
    if not torch.is_tensor(z) or z.dim() < 2:
        raise DataError("features must be a tensor (m, d, …) with samples in rows")
    if z.is_complex():
        raise DataError(f"features are complex ({z.dtype}); cosines are taken of real features")
    z = z.detach().flatten(1)
    checks.check_finite(z, "features")  # a NaN would silently turn every mean into NaN
    z = z.double()
    return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _checked_labels(features: Tensor, labels) -> Tensor:
    if not torch.is_tensor(features) or features.dim() < 2:
        raise DataError("features must be a tensor (m, d, …) with samples in rows")
    labels = checks.as_tensor(labels, "labels", error=DataError)
    if labels.is_floating_point() or labels.is_complex():
        raise DataError(f"labels must be integers, found {labels.dtype}")
    return checks.check_labels(labels.reshape(-1), count=features.shape[0])[0]


def cosine_matrix(features: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(|cos| (m × m) of the samples sorted by label, the sorted labels)``."""
    labels = _checked_labels(features, labels)
    check_allocation(3 * len(labels) ** 2 * 8, f"cosine_matrix of {len(labels):,} samples (an m × m matrix)")
    order = torch.argsort(labels, stable=True)
    z = _unit(features)[order]
    return (z @ z.mT).abs(), labels[order]


def class_cosines(features: Tensor, labels: Tensor, max_samples: int | None = 3000, seed: int = 0) -> dict:
    """``{"within": mean |cos| over distinct same-class pairs, "between": mean |cos| over different-class pairs}``.

    Above ``max_samples`` samples the means are taken over a fixed random subset of that size (seeded), which keeps
    the cost at ``max_samples² · d``; ``None`` uses every sample.
    """
    labels = _checked_labels(features, labels).to(features.device)
    if max_samples is not None:
        max_samples = check_int(max_samples, "max_samples", low=1)
    seed = check_int(seed, "seed")
    if max_samples is not None and len(labels) > max_samples:
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:max_samples]
        features, labels = features[pick.to(features.device)], labels[pick.to(labels.device)]
    z = _unit(features)
    k = int(labels.max()) + 1 if len(labels) else 1
    m = len(z)
    check_allocation((m * k + 2 * k * k + 2 * min(m, 2048) * (m + k)) * 8,
                     f"class_cosines: {m:,} samples of K = {k:,} classes (the largest label + 1)")
    onehot = torch.nn.functional.one_hot(labels.long(), k).double()
    # Σ over pairs of |cos| by blocks of classes, without an m × m matrix held at once
    block = torch.zeros(k, k, dtype=torch.float64)
    for i in range(0, len(z), 2048):
        c = (z[i:i + 2048] @ z.mT).abs()
        block += onehot[i:i + 2048].mT @ c @ onehot
    counts = onehot.sum(0)
    same_pairs = (counts * counts - counts).sum()
    same = (block.diagonal().sum() - len(z)) / same_pairs.clamp_min(1)  # drop the m self-pairs (|cos| = 1)
    diff_pairs = counts.sum() ** 2 - (counts * counts).sum()
    between = (block.sum() - block.diagonal().sum()) / diff_pairs.clamp_min(1)
    return {"within": float(same), "between": float(between)}


def plot_cosine_matrices(panels: dict[str, tuple[Tensor, Tensor]], path, max_samples: int = 1000, seed: int = 0,
                         title: str = "|cosine similarity| of the features, samples sorted by class"):
    """One heat map per ``panel title: (features, labels)``, samples sorted by class (at most ``max_samples``, drawn
    with a fixed seed), each class block ticked with its label and separated by lines, one colour bar per panel and a
    figure ``title``; written atomically to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (name, (z, y)) in zip(axes[0], panels.items()):
        if len(z) > max_samples:
            pick = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))[:max_samples]
            z, y = z[pick], torch.as_tensor(y)[pick]
        mat, ys = cosine_matrix(z, y)
        im = ax.imshow(mat.numpy(), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        edges = torch.nonzero(ys[1:] != ys[:-1]).flatten() + 0.5
        for e in edges.tolist():
            ax.axhline(e, color="k", lw=0.3)
            ax.axvline(e, color="k", lw=0.3)
        ax.set_title(name)
        bounds = [0] + [int(e + 0.5) for e in edges.tolist()] + [len(ys)]
        centres = [(a + b - 1) / 2 for a, b in zip(bounds[:-1], bounds[1:])]
        classes = [str(int(ys[a])) for a in bounds[:-1]]
        step = max(1, len(classes) // 20)  # at most about 20 class ticks
        ax.set_xticks(centres[::step], classes[::step], fontsize=7)
        ax.set_yticks(centres[::step], classes[::step], fontsize=7)
        ax.set(xlabel="class", ylabel="class")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="|cos|")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
