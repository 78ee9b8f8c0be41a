"""The torch device a command runs on, checked: a clear :class:`~srr.errors.ConfigError` for a device that does not
exist here (a misspelt name, CUDA on a machine without it, a GPU index beyond the count)."""
from __future__ import annotations

import torch

from .errors import ConfigError

__all__ = ["pick_device"]


def pick_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:1``, ``mps`` …) if given and present, else CUDA when available, else CPU."""
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {str(name)!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(name)!r}: CUDA is not available on this machine (use cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(name)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {str(name)!r}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps", "meta"):
        raise ConfigError(f"device {str(name)!r}: srr runs on cpu, cuda or mps")
    return device
