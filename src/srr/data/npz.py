"""NumPy ``.npz`` image files: ``--data npz:FILE``.

The file holds ``x`` and ``y`` (split 80 / 20 with a fixed seed), or ``x_train``, ``y_train``, ``x_test``,
``y_test``. Images are (n, H, W) (one channel), (n, C, H, W) or (n, H, W, C) with C ∈ {1, 3, 4} (the layout is read
from which axis has such a size; channels-first wins a tie); uint8 pixels are scaled by 1/255, other real dtypes are
taken as they are. Labels are integers in [0, K). Statistics are computed on the training split (float64, by
chunks); the images stay in their own dtype in memory.

Nothing is loaded before it is inspected: the zip members' sizes (stored or deflate only, no member inflating beyond
what deflate can), then each needed ``.npy`` header (shape, dtype; object arrays are refused, nothing is unpickled),
whose promised size must match its member and fit in memory (:func:`srr.checks.check_memory`). Only the arrays
named above are read; non-finite pixels are refused.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from ..checks import check_labels, check_memory
from ..errors import DataError, DataFileNotFoundError, SrrError, one_line
from .guards import check_finite_pixels, check_image_shape, check_inflated_size
from .image_data import ImageData
from .images import ArrayImages, channel_stats
from .sources import register_source
from .splits import seeded_split

__all__ = ["load_npz", "inspect_npz"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2
_LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("x", "y"))
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> tuple[tuple, np.dtype, int]:
    """``(shape, dtype, header bytes)`` of one ``.npy`` member, read from its first bytes only."""
    key = info.filename[:-4]
    if info.compress_type not in _METHODS:
        raise DataError(f"{path}: array {key!r} is compressed with zip method {info.compress_type}; only stored or "
                        "deflate members (numpy.savez, savez_compressed) are read")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise DataError(f"{path}: array {key!r} is stored with {info.compress_size:,} bytes but declares "
                        f"{info.file_size:,}")
    check_inflated_size(info.file_size, info.compress_size, f"{path}: array {key!r}")
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise DataError(f"{path}: array {key!r} has .npy format version {version}; 1.0 and 2.0 are read")
        offset = fp.tell()
    if dtype.hasobject:
        raise DataError(f"{path}: cannot read it without unpickling objects (array {key!r} holds dtype {dtype})")
    promised = math.prod(shape) * dtype.itemsize
    if offset + promised != info.file_size:
        raise DataError(f"{path}: array {key!r} declares shape {shape} of {dtype} ({promised:,} bytes) but its "
                        f"member holds {info.file_size - offset:,}")
    return shape, dtype, promised


def inspect_npz(path: Path) -> dict[str, tuple[tuple, np.dtype, int]]:
    """``{name: (shape, dtype, bytes)}`` of the arrays a loader needs, from the zip directory and ``.npy`` headers
    alone; refuses unreadable archives, object arrays and members whose declared sizes do not add up."""
    with zipfile.ZipFile(path) as zf:
        members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        layout = next((names for names in _LAYOUTS if set(names) <= set(members)), None)
        if layout is None:
            raise DataError(f"{path}: needs arrays 'x' and 'y' (or x_train, y_train, x_test, y_test), "
                            f"found {sorted(members)[:8]}")
        return {name: _header(zf, members[name], path) for name in layout}


def _read(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    with zf.open(f"{name}.npy") as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


_LAYOUT_HELP = "images must be (n, H, W), (n, C, H, W) or (n, H, W, C) with C in 1/3/4"


def _check_images(name: str, shape: tuple, dtype: np.dtype, path: Path) -> None:
    if not (np.issubdtype(dtype, np.integer) or dtype in (np.float32, np.float64)):
        raise DataError(f"{path}: images must be integers or float32/float64, found {dtype} (array {name!r})")
    if len(shape) not in (3, 4):
        raise DataError(f"{path}: {_LAYOUT_HELP}; array {name!r} has shape {shape}")


def _to_nchw(x: np.ndarray, name: str, path: Path) -> np.ndarray:
    """A view of ``x`` as (n, C, H, W) (no copy: an NHWC array is transposed lazily)."""
    if x.ndim == 3:
        return x[:, None]
    if x.shape[1] in (1, 3, 4):
        return x
    if x.shape[3] in (1, 3, 4):
        return x.transpose(0, 3, 1, 2)
    raise DataError(f"{path}: {_LAYOUT_HELP}; array {name!r} has shape {x.shape}")


def _load_arrays(path: Path, spec: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as fh:
        if fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip archive (empty or not), as np.savez writes
            raise DataError(f"{path}: not an .npz file (numpy.savez's zip of arrays); a .npy or other file is refused")
    try:
        headers = inspect_npz(path)
        for name, (shape, dtype, _) in headers.items():
            if name.startswith("x"):
                _check_images(name, shape, dtype, path)
        total = sum(nbytes for *_, nbytes in headers.values())
        split_copy = headers["x"][2] if "x" in headers else 0  # the 80 / 20 split copies the images once
        check_memory(total + split_copy, f"{path}: arrays {', '.join(headers)}")
        with zipfile.ZipFile(path) as zf:
            return {name: _read(zf, name) for name in headers}
    except SrrError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({one_line(exc)})") from None


def load_npz(path: str | Path, spec: str | None = None) -> ImageData:
    """Load an ``.npz`` file as :class:`ImageData` (raw arrays, standardised per batch)."""
    path = Path(path).expanduser()
    spec = spec or f"npz:{path}"
    if not path.is_file():
        raise DataFileNotFoundError(f"npz file not found: {path}")
    arrays = _load_arrays(path, spec)
    if "x" in arrays:
        x, (y, _) = arrays["x"], check_labels(arrays["y"], count=len(arrays["x"]), where=f"{path} ('y')")
        x = _to_nchw(x, "x", path)
        tr, te = (np.sort(i.numpy()) for i in seeded_split(len(x), TEST_FRACTION, SPLIT_SEED))
        splits = {"train": ("x", x[tr], y[tr]), "test": ("x", x[te], y[te])}
    else:
        splits = {}
        for s in ("train", "test"):
            x = _to_nchw(arrays[f"x_{s}"], f"x_{s}", path)
            y, _ = check_labels(arrays[f"y_{s}"], count=len(x), where=f"{path} ('y_{s}')")
            splits[s] = (f"x_{s}", x, y)
    images = {}
    for split, (name, x, y) in splits.items():
        if len(x) == 0:
            raise DataError(f"{spec}: the {split} split is empty")
        check_image_shape(x.shape, f"{path}: images {name!r}")
        check_finite_pixels(x, f"{path}: images {name!r}")
        images[split] = x
    xtr, xte = images["train"], images["test"]
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"{path}: train images {xtr.shape[1:]} and test images {xte.shape[1:]} differ in shape")
    ytr, yte = splits["train"][2], splits["test"][2]
    k = int(max(ytr.max(), yte.max())) + 1
    scale = 255.0 if xtr.dtype == np.uint8 else 1.0
    mean, std = channel_stats(xtr, scale)
    train = ArrayImages(xtr, ytr, mean, std, scale, k)
    test = ArrayImages(xte, yte, mean, std, scale, k)
    return ImageData("npz", spec, train, test, k, mean, std, xtr.shape[2:], xtr.shape[1])


@register_source("npz", "NumPy .npz with x, y (or x_train, y_train, x_test, y_test) (npz:FILE)", path=True)
def _load(spec) -> ImageData:
    return load_npz(spec.path, spec.text)
