"""MNIST-family IDX files (optionally gzipped) from a user's folder: ``--data idx:PATH_DIR``.

The folder holds ``train-images-idx3-ubyte``/``train-labels-idx1-ubyte`` and/or ``t10k-images-idx3-ubyte``/
``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; ``-idx3-ubyte`` or ``.idx3-ubyte``). With both pairs, they are the
train and test splits; with only one pair, it is split 80 / 20 with a fixed seed.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, DataFileNotFoundError
from .dataset import LabelledData, register_source, seeded_split

__all__ = ["read_idx", "load_idx_dir"]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
           0x0E: np.dtype(">f8")}
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzip) into an array; truncated or malformed files raise :class:`DataError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataFileNotFoundError(f"IDX file not found: {path}") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated or padded IDX data: header promises {expected} bytes for shape {dims}, "
            f"found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find(folder: Path, prefix: str, what: str, idx: str) -> Path | None:
    """``{prefix}-{what}-{idx}-ubyte`` or ``{prefix}-{what}.{idx}-ubyte``, raw or ``.gz``."""
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            p = folder / f"{prefix}-{what}{sep}{idx}-ubyte{suffix}"
            if p.is_file():
                return p
    return None


def _pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    images, labels = _find(folder, prefix, "images", "idx3"), _find(folder, prefix, "labels", "idx1")
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        have, missing = ("labels", "images") if images is None else ("images", "labels")
        raise DataFileNotFoundError(f"{folder}: found the {prefix} {have} but not the {prefix} {missing} IDX file")
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{folder}: {prefix} images of shape {x.shape} do not match labels of shape {y.shape}")
    return x, y


def load_idx_dir(folder: str | Path, spec: str | None = None) -> LabelledData:
    """Load an MNIST-family folder as :class:`LabelledData` (pixels scaled to [0, 1], then standardised)."""
    folder = Path(folder).expanduser()
    spec = spec or f"idx:{folder}"
    if not folder.is_dir():
        raise DataFileNotFoundError(f"IDX folder not found: {folder}")
    train, test = _pair(folder, "train"), _pair(folder, "t10k")
    if train is None and test is None:
        raise DataFileNotFoundError(f"{folder} holds no train-/t10k- images-idx3-ubyte and labels-idx1-ubyte files")
    to_x = lambda a: torch.from_numpy(a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)).unsqueeze(1)
    to_y = lambda a: torch.from_numpy(a.astype(np.int64))
    if train is not None and test is not None:
        parts = (to_x(train[0]), to_y(train[1]), to_x(test[0]), to_y(test[1]))
    else:
        x, y = to_x((train or test)[0]), to_y((train or test)[1])
        tr, te = seeded_split(len(x), TEST_FRACTION, SPLIT_SEED)
        parts = (x[tr], y[tr], x[te], y[te])
    if len(parts[1]) == 0 or len(parts[3]) == 0:
        raise DataError(f"{spec}: the {'train' if len(parts[1]) == 0 else 'test'} split is empty")
    k = int(max(parts[1].max(), parts[3].max())) + 1
    return LabelledData.from_raw("idx", spec, *parts, num_classes=max(k, 10))


@register_source("idx", "MNIST-family IDX files in a folder (train-/t10k-, optionally .gz)", takes_path=True)
def _load(arg: str | None, spec: str) -> LabelledData:
    return load_idx_dir(arg, spec)
