"""Image data sets that stay raw in memory (or on disk) and are standardised one batch at a time.

Every ``--data`` source returns an object with ``train_set`` and ``test_set``: ``torch.utils.data.Dataset``s whose
``__getitems__(indices)`` returns one standardised batch ``(x (b, C, H, W) float32, y (b,) int64)``, so a
``DataLoader`` with a batch sampler fetches a whole batch per call, in worker processes when asked (``--workers``).
Standardisation is ``(x / scale − mean) / std`` per channel, with ``scale`` = 255 for 8-bit pixels and 1 otherwise.

* :class:`TensorImages` — already standardised float tensors (the small in-memory sources: digits, IDX, synthetic).
* :class:`ArrayImages` — raw arrays (uint8 CIFAR batches, ``.npz`` files): a 50,000-image CIFAR-10 is held as 150 MB
  of uint8 instead of 600 MB of float32.
* :class:`StreamedData` — the train and test sets of such a source with the statistics the model needs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import DataError
from .dataset import LabelledData

__all__ = ["TensorImages", "BatchDataset", "ArrayImages", "StreamedData", "as_batch", "channel_stats", "check_labels"]


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


class ArrayImages(BatchDataset):
    """Raw images ``x`` (n, C, H, W) (a NumPy array or tensor, any real dtype) standardised per batch."""

    def __init__(self, x, y, mean: Sequence[float], std: Sequence[float], scale: float | None = None):
        self.x = torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
        self.y = torch.as_tensor(np.asarray(y, dtype=np.int64)) if not isinstance(y, Tensor) else y.long()
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


def channel_stats(x, scale: float, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of ``x / scale`` over (n, H, W), accumulated in float64 by chunks."""
    x = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
    c = x.shape[1]
    total, sq, count = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].to(torch.float64) / scale
        total += part.sum(dim=(0, 2, 3))
        sq += (part * part).sum(dim=(0, 2, 3))
        count += part.numel() // c
    if count == 0:
        raise DataError("cannot compute statistics of an empty data set")
    mean = total / count
    var = (sq / count - mean * mean).clamp_min(0.0) * count / max(1, count - 1)
    return mean.tolist(), var.sqrt().clamp_min(1e-6).tolist()


def check_labels(spec: str, split: str, y, num_classes: int) -> None:
    """Raise :class:`DataError` for an empty split or labels outside ``[0, num_classes)``."""
    y = torch.as_tensor(np.asarray(y)) if not isinstance(y, Tensor) else y
    if len(y) == 0:
        raise DataError(f"{spec}: the {split} split is empty")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise DataError(f"{spec}: {split} labels outside [0, {num_classes})")


class StreamedData:
    """Train and test :class:`~torch.utils.data.Dataset`s of one image data set, read one batch at a time.

    Offers the attributes of :class:`srr.data.LabelledData` that describe the data (``num_classes``, ``mean``,
    ``std``, ``channels``, ``image_size``, ``model_overrides()``, ``unnormalize``); ``x_test`` and friends
    materialise the whole split as standardised tensors on first use (fine for CIFAR's test set; avoid on ImageNet).
    """

    def __init__(self, name: str, spec: str, train_set: Dataset, test_set: Dataset, num_classes: int,
                 mean: Sequence[float], std: Sequence[float], image_size: tuple[int, int], channels: int):
        self.name, self.spec, self.train_set, self.test_set = name, spec, train_set, test_set
        self.num_classes, self.mean, self.std = num_classes, list(mean), list(std)
        self.image_size, self.channels = tuple(image_size), channels
        self._cache: dict[str, tuple[Tensor, Tensor]] = {}
        if len(train_set) == 0 or len(test_set) == 0:
            raise DataError(f"{spec}: the {'train' if len(train_set) == 0 else 'test'} split is empty")

    model_overrides = LabelledData.model_overrides
    unnormalize = LabelledData.unnormalize

    def _split(self, which: str) -> tuple[Tensor, Tensor]:
        if which not in self._cache:
            ds = self.train_set if which == "train" else self.test_set
            self._cache[which] = ds.__getitems__(list(range(len(ds))))
        return self._cache[which]

    x_train = property(lambda self: self._split("train")[0])
    y_train = property(lambda self: self._split("train")[1])
    x_test = property(lambda self: self._split("test")[0])
    y_test = property(lambda self: self._split("test")[1])

    def __repr__(self) -> str:
        return (f"StreamedData({self.spec!r}: {len(self.train_set)} train / {len(self.test_set)} test, "
                f"{self.channels}x{self.image_size[0]}x{self.image_size[1]}, {self.num_classes} classes)")
