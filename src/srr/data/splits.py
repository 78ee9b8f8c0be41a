"""The fixed, seeded train/test split that sources without a split of their own use."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["seeded_split"]


def seeded_split(n: int, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices of a fixed random train/test split of ``n`` items."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]
