"""The kinds of image dataset behind :class:`~srr.data.image_data.ImageData`, each standardised one batch at a time.

Every ``--data`` image source returns an object with ``train_set`` and ``test_set``: ``torch.utils.data.Dataset``s
whose ``__getitems__(indices)`` returns one standardised batch ``(x (b, C, H, W) float32, y (b,) int64)``, so a
``DataLoader`` with a batch sampler fetches a whole batch per call, in worker processes when asked (``--workers``).
Standardisation is ``(x / scale − mean) / std`` per channel, with ``scale`` = 255 for 8-bit pixels and 1 otherwise.

* :class:`TensorImages` — already standardised float tensors (the small in-memory sources: digits, synthetic).
* :class:`ArrayImages` — raw arrays (uint8 CIFAR batches, IDX and ``.npz`` files): a 50,000-image CIFAR-10 is held
  as 150 MB of uint8 instead of 600 MB of float32.
* ``FolderImages`` (:mod:`srr.data.folder`) — image files decoded per batch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..checks import check_labels
from ..errors import DataError
from .guards import CHUNK_BYTES

__all__ = ["TensorImages", "BatchDataset", "ArrayImages", "ChannelStats", "as_batch", "channel_stats"]


def as_batch(batch):
    """``collate_fn`` for datasets whose ``__getitems__`` already returns a batch (module level: picklable)."""
    return batch


def _index(indices) -> Tensor:
    return torch.as_tensor(indices, dtype=torch.long)


class TensorImages(Dataset):
    """Standardised images ``x`` (n, C, H, W) and labels ``y`` (n,) held as tensors."""

    def __init__(self, x: Tensor, y: Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]

    def __getitems__(self, indices: Sequence[int]):
        idx = _index(indices)
        return self.x[idx], self.y[idx]


class BatchDataset(Dataset):
    """A dataset of ``self.y`` labels whose ``__getitems__(indices)`` returns a whole batch."""

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x, y = self.__getitems__([i])
        return x[0], y[0]


def _as_tensor(x) -> Tensor:
    """A NumPy array as a tensor sharing its memory (any positive strides: an NHWC view stays a view)."""
    if isinstance(x, Tensor):
        return x
    x = np.asarray(x)
    if not x.flags.writeable or not x.dtype.isnative or any(s < 0 for s in x.strides):
        x = np.array(x, dtype=x.dtype.newbyteorder("="))  # torch needs native, writeable, positive strides
    return torch.from_numpy(x)


class ArrayImages(BatchDataset):
    """Raw images ``x`` (n, C, H, W) (a NumPy array or tensor, any real dtype) standardised per batch.

    ``y`` goes through :func:`srr.checks.check_labels` (integers, 1-D, one per image, within ``num_classes`` when
    given) before it is cast.
    """

    def __init__(self, x, y, mean: Sequence[float], std: Sequence[float], scale: float | None = None,
                 num_classes: int | None = None):
        self.x = _as_tensor(x)
        self.y, _ = check_labels(y, num_classes, count=len(self.x))
        self.scale = float(scale if scale is not None else (255.0 if self.x.dtype == torch.uint8 else 1.0))
        c = self.x.shape[1]
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1)

    def __getitems__(self, indices: Sequence[int]):
        idx = _index(indices)
        x = self.x[idx].to(torch.float32)
        if self.scale != 1.0:
            x = x / self.scale
        return (x - self.mean) / self.std, self.y[idx]


class ChannelStats:
    """Per-channel mean and (unbiased) standard deviation of images added chunk by chunk, summed in float64."""

    def __init__(self, channels: int):
        self.total = torch.zeros(channels, dtype=torch.float64)
        self.squares = torch.zeros(channels, dtype=torch.float64)
        self.count = 0

    def add(self, part: Tensor, scale: float = 1.0) -> None:
        part = part.to(torch.float64)
        if scale != 1.0:
            part = part / scale
        self.total += part.sum(dim=(0, 2, 3))
        self.squares += (part * part).sum(dim=(0, 2, 3))
        self.count += part.numel() // max(1, part.shape[1])

    def result(self) -> tuple[list[float], list[float]]:
        if self.count == 0:
            raise DataError("cannot compute statistics of an empty data set")
        mean = self.total / self.count
        var = (self.squares / self.count - mean * mean).clamp_min(0.0) * self.count / max(1, self.count - 1)
        return mean.tolist(), var.sqrt().clamp_min(1e-6).tolist()


def channel_stats(x, scale: float, chunk_bytes: int = CHUNK_BYTES) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of ``x / scale`` over (n, H, W), by chunks of ``chunk_bytes``
    float64 bytes (so the statistics of a large array need little memory beyond the array)."""
    x = _as_tensor(x)
    stats = ChannelStats(x.shape[1])
    step = max(1, chunk_bytes // max(1, 8 * int(np.prod(x.shape[1:]))))
    for i in range(0, len(x), step):
        stats.add(x[i:i + step], scale)
    return stats.result()
