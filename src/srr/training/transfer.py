"""Start a run from saved weights (fine-tuning): copy every tensor whose name and shape fit, resize the positional
embedding to the new patch grid (bicubic, the CLS position kept), and leave the rest (typically the classification
head of another number of classes) at its fresh initialisation."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, DataFileNotFoundError

__all__ = ["load_initial_weights", "resize_pos_embedding"]


def resize_pos_embedding(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(1, 1 + h·w, d) → (1, 1 + H·W, d) for the new ``grid`` (H, W); the old grid must be square."""
    cls, rest = pos[:, :1], pos[:, 1:]
    old = int(round(math.sqrt(rest.shape[1])))
    if old * old != rest.shape[1]:
        raise CheckpointError(f"cannot resize a positional embedding of {rest.shape[1]} non-square positions")
    img = rest.reshape(1, old, old, -1).permute(0, 3, 1, 2).float()
    img = F.interpolate(img, size=grid, mode="bicubic", align_corners=False)
    return torch.cat([cls, img.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(pos.dtype)], dim=1)


def load_initial_weights(model: nn.Module, path: str | Path) -> dict:
    """Copy weights from a saved model folder (``model.safetensors``) or a ``.safetensors`` file into ``model``.

    Returns ``{"loaded": [...], "resized": [...], "skipped": [...]}`` (parameter names).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    file = path / "model.safetensors" if path.is_dir() else path
    if not file.is_file():
        raise DataFileNotFoundError(f"no weights to start from at {file}")
    try:
        source = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from None
    own = model.state_dict()
    report = {"loaded": [], "resized": [], "skipped": []}
    with torch.no_grad():
        for name, target in own.items():
            value = source.get(name)
            if value is not None and value.shape == target.shape:
                target.copy_(value)
                report["loaded"].append(name)
            elif value is not None and name.endswith("pos_embedding") and hasattr(model, "grid"):
                target.copy_(resize_pos_embedding(value, model.grid))
                report["resized"].append(name)
            else:
                report["skipped"].append(name)
    if not report["loaded"]:
        raise CheckpointError(f"{file} shares no tensor of matching name and shape with the model")
    return report
