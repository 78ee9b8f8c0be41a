"""``save_pretrained`` / ``from_pretrained``: safetensors weights plus a JSON config, as Hugging Face's.

A saved model is a folder with ``config.json`` (``{"model": registry name, "args": {...}}``) and
``model.safetensors``. Loading never unpickles anything: safetensors holds tensors only. Both files are written
atomically (see :mod:`srr.io`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, DataFileNotFoundError, one_line
from ..io import atomic_path, atomic_write_json
from .registry import create_model

__all__ = ["save_pretrained", "from_pretrained", "PretrainedMixin", "CONFIG_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_pretrained(model: nn.Module, directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write ``model`` (built by :func:`srr.create_model`) to ``directory``; ``extra`` is kept in the config."""
    from safetensors.torch import save_model

    config = getattr(model, "config", None)
    if not config or "model" not in config:
        raise CheckpointError("only models built with srr.create_model carry the config needed by save_pretrained")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_model(model, str(tmp))
    from .. import __version__

    atomic_write_json(directory / CONFIG_NAME, {**config, "srr_version": __version__, **(extra or {})})
    return directory


def read_config(directory: str | os.PathLike) -> dict:
    """The ``config.json`` of a saved model, checked."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise DataFileNotFoundError(f"{directory} holds no {CONFIG_NAME}: not a saved srr model")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), str) or not isinstance(
            config.get("args", {}), dict):
        raise CheckpointError(f"{path} does not describe a model (needs 'model' and 'args')")
    return config


def from_pretrained(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved in ``directory`` and load its weights strictly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from ..device import pick_device

    directory = Path(directory)
    config = read_config(directory)
    map_location = pick_device(map_location)  # a clear error for a device that does not exist here
    model = create_model(config["model"], **config.get("args", {}))
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise DataFileNotFoundError(f"{directory} holds no {WEIGHTS_NAME}")
    try:
        missing, unexpected = load_model(model, str(weights), strict=False, device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {exc}") from None
    except RuntimeError as exc:
        raise CheckpointError(f"{weights} does not fit {config['model']}: {one_line(exc)}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{weights} does not fit {config['model']}: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    return model


class PretrainedMixin:
    """Adds ``model.save_pretrained(dir)`` and ``Class.from_pretrained(dir)`` to a registered model class."""

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        return save_pretrained(self, directory, extra)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
        model = from_pretrained(directory, map_location)
        if not isinstance(model, cls):
            raise CheckpointError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
