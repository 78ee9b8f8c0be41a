"""Label noise: replace a fixed fraction of the training labels by uniformly random ones (as in the MCR² paper).

``corrupt_labels(y, ratio)`` picks ``round(ratio · n)`` samples without replacement (seeded) and draws each a new
label uniformly from the K classes — so about ``ratio · (1 − 1/K)`` of the labels end up wrong, as in the authors'
``corrupt_labels``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_labels
from ..errors import DataError

__all__ = ["corrupt_labels"]


def corrupt_labels(labels: Tensor, ratio: float, num_classes: int | None = None, seed: int = 0) -> Tensor:
    """A copy of ``labels`` with ``round(ratio·n)`` of them redrawn uniformly from ``[0, num_classes)``."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
        raise DataError(f"the corruption ratio must lie in [0, 1], got {ratio!r}")
    labels, k = check_labels(torch.as_tensor(labels) if isinstance(labels, (list, tuple)) else labels, num_classes)
    labels = labels.clone()
    g = torch.Generator().manual_seed(seed)
    n_bad = int(round(ratio * len(labels)))
    pick = torch.randperm(len(labels), generator=g)[:n_bad]
    labels[pick] = torch.randint(0, k, (n_bad,), generator=g)
    return labels
