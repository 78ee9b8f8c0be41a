"""Checks made before a training run starts, so that a model that cannot fit its data fails at once with one line
instead of mid-epoch with a traceback."""
from __future__ import annotations

import torch

from ..errors import DataError

__all__ = ["check_outputs"]


def check_outputs(logits: torch.Tensor, num_classes: int, spec: str) -> torch.Tensor:
    """The classifier's logits (…, C) must have an output for every label in ``[0, num_classes)``; returns them."""
    if logits.shape[-1] < num_classes:
        raise DataError(f"{spec} has labels up to {num_classes - 1} but the model has {logits.shape[-1]} outputs; "
                        f"drop --set num_classes or set it to {num_classes}")
    return logits
