"""``ImageData``: the one type of labelled image data set that every ``--data`` image source returns.

It holds a ``train_set`` and a ``test_set`` (datasets of :mod:`srr.data.images` or :mod:`srr.data.folder` whose
``__getitems__(indices)`` returns one standardised batch ``(x float32 (b, C, H, W), y int64 (b,))``) and what a
model needs to know about them: ``num_classes``, the per-channel ``mean`` and ``std`` of the standardisation,
``image_size`` and ``channels``. ``x_train``, ``y_train``, ``x_test``, ``y_test`` materialise a whole split as
standardised tensors on first use (after a memory check) and keep it.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..checks import check_int, check_labels, check_memory
from ..errors import DataError
from .guards import check_finite_pixels, check_image_shape
from .images import TensorImages, channel_stats

__all__ = ["ImageData"]


def _floats(values, name: str, spec: str, channels: int) -> list[float]:
    values = [float(v) for v in values]
    if len(values) != channels or not all(math.isfinite(v) for v in values):
        raise DataError(f"{spec}: {name} must be {channels} finite number(s), one per channel, got {values}")
    return values


class ImageData:
    """Train and test datasets of one labelled image data set, with the statistics that standardise them."""

    def __init__(self, name: str, spec: str, train_set: Dataset, test_set: Dataset, num_classes: int,
                 mean: Sequence[float], std: Sequence[float], image_size: Sequence[int] | None = None,
                 channels: int | None = None):
        self.name, self.spec = name, str(spec)
        if torch.is_tensor(train_set) or torch.is_tensor(test_set):
            raise TypeError("ImageData(name, spec, train_set, test_set, num_classes, mean, std, ...) takes datasets; "
                            "for tensors use ImageData.from_tensors(name, spec, x_train, y_train, x_test, y_test, ...)")
        self.train_set, self.test_set = train_set, test_set
        for split, ds in (("train", train_set), ("test", test_set)):
            if len(ds) == 0:
                raise DataError(f"{self.spec}: the {split} split is empty")
        shape = getattr(getattr(train_set, "x", None), "shape", None)
        if image_size is None or channels is None:
            if shape is None:
                raise DataError(f"{self.spec}: give image_size and channels for a dataset without an array 'x'")
            check_image_shape(shape, self.spec)
        self.channels = int(channels if channels is not None else shape[1])
        self.image_size = tuple(int(s) for s in (image_size if image_size is not None else shape[2:]))
        check_image_shape((1, self.channels, *self.image_size), self.spec)
        self.num_classes = check_int(num_classes, f"{self.spec}: num_classes", low=1, error=DataError)
        for split, ds in (("train", train_set), ("test", test_set)):
            x = getattr(ds, "x", None)
            if x is not None and tuple(x.shape[1:]) != (self.channels, *self.image_size):
                raise DataError(f"{self.spec}: {split} images of shape {tuple(x.shape[1:])}, expected "
                                f"{(self.channels, *self.image_size)}")
            if getattr(ds, "y", None) is not None:
                check_labels(ds.y, self.num_classes, name=f"{split} labels", count=len(ds), where=self.spec)
        self.mean = _floats(mean, "mean", self.spec, self.channels)
        self.std = _floats(std, "std", self.spec, self.channels)
        if min(self.std) <= 0:
            raise DataError(f"{self.spec}: std must be positive, got {self.std}")
        self._cache: dict[str, tuple[Tensor, Tensor]] = {}

    # ---- the whole split as tensors (for the instruments; avoid on ImageNet) ----
    def _split(self, which: str) -> tuple[Tensor, Tensor]:
        if which not in self._cache:
            ds = self.train_set if which == "train" else self.test_set
            if isinstance(ds, TensorImages):
                self._cache[which] = (ds.x, ds.y)
            else:
                h, w = self.image_size
                check_memory(2 * len(ds) * self.channels * h * w * 4, f"{self.spec}: the {which} split as float32")
                self._cache[which] = ds.__getitems__(list(range(len(ds))))
        return self._cache[which]

    x_train = property(lambda self: self._split("train")[0])
    y_train = property(lambda self: self._split("train")[1])
    x_test = property(lambda self: self._split("test")[0])
    y_test = property(lambda self: self._split("test")[1])

    # ---- what a model and a run need to know ----
    def model_overrides(self) -> dict:
        """The ``create_model`` overrides that make a model fit this data."""
        h, w = self.image_size
        return {"image_size": h if h == w else [h, w], "channels": self.channels, "num_classes": self.num_classes}

    def preprocessing(self) -> dict:
        """The standardisation and image geometry a run records, to prepare new images the same way."""
        return {"mean": list(self.mean), "std": list(self.std), "image_size": list(self.image_size),
                "channels": self.channels}

    def unnormalize(self, x: Tensor) -> Tensor:
        """Undo the standardisation (for display)."""
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return x * std + mean

    def __repr__(self) -> str:
        return (f"ImageData({self.spec!r}: {len(self.train_set)} train / {len(self.test_set)} test, "
                f"{self.channels}x{self.image_size[0]}x{self.image_size[1]}, {self.num_classes} classes)")

    def first(self, n_train: int, n_test: int) -> "ImageData":
        """The first ``n_train`` training and ``n_test`` test images (all of a split when it holds fewer), with this
        data's standardisation kept."""
        from ..checks import check_int

        n_train = min(check_int(n_train, "n_train", low=1), len(self.train_set))
        n_test = min(check_int(n_test, "n_test", low=1), len(self.test_set))
        return ImageData.from_tensors(self.name, f"{self.spec} (first {n_train} / {n_test})", self.x_train[:n_train],
                                      self.y_train[:n_train], self.x_test[:n_test], self.y_test[:n_test],
                                      self.num_classes, mean=self.mean, std=self.std)

    # ---- in memory ----
    @classmethod
    def from_tensors(cls, name: str, spec: str, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor,
                     num_classes: int | None = None, *, mean: Sequence[float] | None = None,
                     std: Sequence[float] | None = None) -> "ImageData":
        """In-memory images (n, C, H, W) and labels.

        Without ``mean`` and ``std``, raw images are standardised with the training split's per-channel statistics
        (non-finite pixels are refused first: one NaN would poison them). With both, the images are taken as
        already standardised by them and kept as they are. Labels go through :func:`srr.checks.check_labels`; the
        class count is ``num_classes`` or, when omitted, inferred from the largest label.
        """
        spec = str(spec)
        xs, ys, k = {}, {}, 0
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            if not torch.is_tensor(x) or x.is_complex() or x.dtype == torch.bool:
                raise DataError(f"{spec}: {split} images must be a real tensor, got {type(x).__name__}")
            if len(x) == 0:
                raise DataError(f"{spec}: the {split} split is empty")
            check_image_shape(x.shape, f"{spec}: {split} images")
            ys[split], k_split = check_labels(y, num_classes, name=f"{split} labels", count=len(x), where=spec)
            k = max(k, k_split)
            xs[split] = x
        if (mean is None) != (std is None):
            raise DataError(f"{spec}: give both mean and std (already standardised images) or neither")
        if mean is None:
            check_memory(12 * sum(x.numel() for x in xs.values()), f"{spec}: the images as float32")
            for split, x in xs.items():
                check_finite_pixels(x, f"{spec}: {split} images")
            mean, std = channel_stats(xs["train"], 1.0)
            m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
            s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
            xs = {split: (x.float() - m) / s for split, x in xs.items()}
        sets = {split: TensorImages(xs[split], ys[split]) for split in xs}
        return cls(name, spec, sets["train"], sets["test"], num_classes if num_classes is not None else k,
                   mean, std)
