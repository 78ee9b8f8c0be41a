"""NumPy ``.npz`` image files: ``--data npz:FILE``.

The file holds ``x`` and ``y`` (split 80 / 20 with a fixed seed), or ``x_train``, ``y_train``, ``x_test``,
``y_test``. Images are (n, H, W) (one channel), (n, C, H, W) or (n, H, W, C) with C ∈ {1, 3, 4} (the layout is read
from which axis has such a size; channels-first wins a tie); uint8 pixels are scaled by 1/255, other real dtypes are
taken as they are. Labels are integers in [0, K). Loaded with ``allow_pickle=False``: an object array is refused.
Statistics are computed on the training split (float64, by chunks); the images stay in their own dtype in memory.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError, DataFileNotFoundError
from .dataset import register_source, seeded_split
from .images import ArrayImages, StreamedData, channel_stats, check_labels

__all__ = ["load_npz"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def _to_nchw(x: np.ndarray, path: Path) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        if x.shape[1] in (1, 3, 4):
            return x
        if x.shape[3] in (1, 3, 4):
            return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    raise DataError(f"{path}: images must be (n, H, W), (n, C, H, W) or (n, H, W, C) with C in 1/3/4, got {x.shape}")


def _check(x: np.ndarray, y: np.ndarray, path: Path, split: str) -> None:
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)) or x.dtype == np.float16:
        raise DataError(f"{path}: {split} images must be integers or float32/float64, found {x.dtype}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {split} labels must be a 1-D integer array, found {y.shape} {y.dtype}")
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} {split} images but {len(y)} labels")


def load_npz(path: str | Path, spec: str | None = None) -> StreamedData:
    """Load an ``.npz`` file as :class:`StreamedData`."""
    path = Path(path).expanduser()
    spec = spec or f"npz:{path}"
    if not path.is_file():
        raise DataFileNotFoundError(f"npz file not found: {path}")
    with open(path, "rb") as fh:
        if fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip archive (empty or not), as np.savez writes
            raise DataError(f"{path}: not an .npz file (numpy.savez's zip of arrays); a .npy or other file is refused")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as exc:
        raise DataError(f"{path}: cannot read it without unpickling objects ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
        splits = {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "test")}
    elif {"x", "y"} <= set(arrays):
        x, y = arrays["x"], arrays["y"]
        _check(x, y, path, "all")
        tr, te = seeded_split(len(x), TEST_FRACTION, SPLIT_SEED)
        tr, te = np.sort(tr.numpy()), np.sort(te.numpy())
        splits = {"train": (x[tr], y[tr]), "test": (x[te], y[te])}
    else:
        raise DataError(f"{path}: needs arrays 'x' and 'y' (or x_train, y_train, x_test, y_test), "
                        f"found {sorted(arrays)}")
    for split, (x, y) in splits.items():
        _check(x, y, path, split)
    splits = {s: (_to_nchw(x, path), y.astype(np.int64)) for s, (x, y) in splits.items()}
    (xtr, ytr), (xte, yte) = splits["train"], splits["test"]
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"{path}: train images {xtr.shape[1:]} and test images {xte.shape[1:]} differ in shape")
    if len(ytr) == 0 or len(yte) == 0:
        raise DataError(f"{spec}: the {'train' if len(ytr) == 0 else 'test'} split is empty")
    k = int(max(ytr.max(), yte.max())) + 1
    for split, (_, y) in splits.items():
        check_labels(spec, split, y, k)
    scale = 255.0 if xtr.dtype == np.uint8 else 1.0
    mean, std = channel_stats(xtr, scale)
    train = ArrayImages(xtr, ytr, mean, std, scale)
    test = ArrayImages(xte, yte, mean, std, scale)
    return StreamedData("npz", spec, train, test, k, mean, std, xtr.shape[2:], xtr.shape[1])


@register_source("npz", "NumPy .npz with x, y (or x_train, y_train, x_test, y_test) (npz:FILE)", takes_path=True)
def _load(arg: str | None, spec: str) -> StreamedData:
    return load_npz(arg, spec)
