"""scikit-learn's embedded ``load_digits`` (1,797 images, 8 × 8, one channel), with a fixed, seeded split."""
from __future__ import annotations

import torch

from .image_data import ImageData
from .sources import register_source
from .splits import seeded_split

TEST_FRACTION = 0.2
SPLIT_SEED = 0


@register_source("digits", "scikit-learn's 8x8 digits (embedded; 1,438 train / 359 test, fixed seed)")
def load_digits(spec) -> ImageData:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    train, test = seeded_split(len(x), TEST_FRACTION, SPLIT_SEED)
    return ImageData.from_tensors("digits", spec.text, x[train], y[train], x[test], y[test], num_classes=10)
