"""The sampler that splits every global batch of an epoch between the processes of a data-parallel run."""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["GlobalBatchSampler"]


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields, for one rank, its share of each global batch of one epoch.

    Each epoch draws one permutation of ``range(n)`` from ``generator`` (the same on every rank); global batch ``j``
    is ``perm[j·B : (j+1)·B]`` and rank ``r`` of ``W`` takes its elements ``r, r+W, …`` (as torch's
    ``DistributedSampler`` strides). Unlike ``DistributedSampler`` nothing is padded or duplicated and the global
    batch is the same for any ``W``, so a W-process run reproduces the 1-process run: the loss of rank r is scaled
    by ``W·b_r / b`` to give the exact global mean after DDP's gradient average. A last global batch with fewer than
    ``min_size`` items (``W × accumulate``) is dropped so that every rank has work for every micro-batch.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world_size: int = 1,
                 min_size: int = 1, shuffle: bool = True):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
        self.sizes = [s for s in sizes if s >= min_size]
        self._perm: torch.Tensor | None = None
        self._skip = 0

    def __len__(self) -> int:
        return len(self.sizes) - self._skip

    def begin_epoch(self, skip: int = 0) -> None:
        """Draw this epoch's permutation now (advancing the generator) and start after ``skip`` batches."""
        self._perm = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        self._skip = skip

    def global_size(self, batch: int) -> int:
        return self.sizes[batch]

    def __iter__(self) -> Iterator[list[int]]:
        if self._perm is None:
            self.begin_epoch()
        perm, skip = self._perm, self._skip
        self._perm, self._skip = None, 0
        for j in range(skip, len(self.sizes)):
            start = j * self.batch_size
            yield perm[start:start + self.sizes[j]][self.rank::self.world_size].tolist()
