"""MNIST-family IDX files (optionally gzipped) from a user's folder: ``--data idx:PATH_DIR``.

The folder holds ``train-images-idx3-ubyte``/``train-labels-idx1-ubyte`` and/or ``t10k-images-idx3-ubyte``/
``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; ``-idx3-ubyte`` or ``.idx3-ubyte``). With both pairs, they are the
train and test splits; with only one pair, it is split 80 / 20 with a fixed seed. Images stay in their own dtype in
memory and are standardised per batch (8-bit pixels scaled by 1/255).

:func:`read_idx` reads a file as a stream: the header first, then exactly the bytes it promises into an array
allocated once, after the promise was checked against the file (a raw file must hold exactly that much; a gzip
stream cannot inflate beyond :data:`~srr.data.guards.MAX_DEFLATE_RATIO` to one) and against the memory available.
Missing or trailing data is refused naming both sizes; a gzip bomb is refused before it is inflated.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..checks import check_labels, check_memory
from ..errors import DataError, DataFileNotFoundError, one_line
from .guards import CHUNK_BYTES, check_finite_pixels, check_image_shape, check_inflated_size
from .image_data import ImageData
from .images import ArrayImages, channel_stats
from .sources import register_source
from .splits import seeded_split

__all__ = ["read_idx", "load_idx_dir", "MAX_IDX_DIMS"]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
           0x0E: np.dtype(">f8")}
MAX_IDX_DIMS = 8
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def _read_exact(stream, n: int) -> bytes:
    out = b""
    while len(out) < n:
        part = stream.read(n - len(out))
        if not part:
            break
        out += part
    return out


def _read_into(stream, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream`` by chunks; the number of bytes read (short at the end of the stream)."""
    done = 0
    while done < len(buffer):
        n = stream.readinto(buffer[done:done + CHUNK_BYTES])
        if not n:
            break
        done += n
    return done


def _read_stream(stream, path: Path, size: int, gz: bool) -> np.ndarray:
    magic = _read_exact(stream, 4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = magic[3]
    if ndim > MAX_IDX_DIMS:
        raise DataError(f"{path}: the IDX header declares {ndim} dimensions (at most {MAX_IDX_DIMS})")
    raw_dims = _read_exact(stream, 4 * ndim)
    if ndim == 0 or len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = np.dtype(_DTYPES[magic[2]])
    header, promised = 4 + 4 * ndim, math.prod(dims) * dtype.itemsize
    what = f"{path}: truncated or padded IDX data: header promises {promised:,} bytes for shape {dims}"
    if not gz and size - header != promised:
        raise DataError(f"{what}, found {size - header:,}")
    if gz:
        check_inflated_size(promised, size, f"{path}: truncated or padded IDX data: the header (shape {dims})")
    check_memory(promised, f"{path}: IDX data of shape {dims}")
    array = np.empty(dims, dtype=dtype)
    got = _read_into(stream, memoryview(array.reshape(-1).view(np.uint8)))
    if got < promised:
        raise DataError(f"{what}, found {got:,}")
    if stream.read(1):  # reading on to the end also checks the gzip CRC
        raise DataError(f"{what}, found at least {promised + 1:,} (trailing data)")
    if dtype.byteorder == ">":
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzip) into an array; truncated, padded, malformed or oversized files raise
    :class:`DataError` (or :class:`~srr.errors.ResourceError` when memory cannot hold what the header promises)."""
    path = Path(path)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise DataFileNotFoundError(f"IDX file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        gz = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        try:
            if not gz:
                return _read_stream(fh, path, size, False)
            with gzip.GzipFile(fileobj=fh, mode="rb") as stream:
                return _read_stream(stream, path, size, True)
        except (OSError, EOFError, zlib.error) as exc:
            if not gz:
                raise DataError(f"cannot read {path}: {one_line(exc)}") from None
            raise DataError(f"{path}: corrupt or truncated gzip stream ({one_line(exc)})") from None


def _find(folder: Path, prefix: str, what: str, idx: str) -> Path | None:
    """``{prefix}-{what}-{idx}-ubyte`` or ``{prefix}-{what}.{idx}-ubyte``, raw or ``.gz``."""
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            p = folder / f"{prefix}-{what}{sep}{idx}-ubyte{suffix}"
            if p.is_file():
                return p
    return None


def _pair(folder: Path, prefix: str):
    images, labels = _find(folder, prefix, "images", "idx3"), _find(folder, prefix, "labels", "idx1")
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        have, missing = ("labels", "images") if images is None else ("images", "labels")
        raise DataFileNotFoundError(f"{folder}: found the {prefix} {have} but not the {prefix} {missing} IDX file")
    x = read_idx(images)
    if x.ndim != 3:
        raise DataError(f"{images}: images must be (n, H, W), found shape {x.shape}")
    y, _ = check_labels(read_idx(labels), name=f"{prefix} labels", count=len(x), where=str(labels))
    return x[:, None], y


def load_idx_dir(folder: str | Path, spec: str | None = None) -> ImageData:
    """Load an MNIST-family folder as :class:`ImageData` (standardised per batch with the training statistics)."""
    folder = Path(folder).expanduser()
    spec = spec or f"idx:{folder}"
    if not folder.is_dir():
        raise DataFileNotFoundError(f"IDX folder not found: {folder}")
    train, test = _pair(folder, "train"), _pair(folder, "t10k")
    if train is None and test is None:
        raise DataFileNotFoundError(f"{folder} holds no train-/t10k- images-idx3-ubyte and labels-idx1-ubyte files")
    if train is None or test is None:
        x, y = train or test
        check_memory(x.nbytes, f"{spec}: the split copies of the images")
        tr, te = (np.sort(i.numpy()) for i in seeded_split(len(x), TEST_FRACTION, SPLIT_SEED))
        train, test = (x[tr], y[tr]), (x[te], y[te])
    (xtr, ytr), (xte, yte) = train, test
    for split, x in (("train", xtr), ("test", xte)):
        if len(x) == 0:
            raise DataError(f"{spec}: the {split} split is empty")
        check_image_shape(x.shape, f"{spec}: {split} images")
        check_finite_pixels(x, f"{spec}: {split} images")
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"{spec}: train images {xtr.shape[2:]} and test images {xte.shape[2:]} differ in shape")
    k = max(10, int(max(ytr.max(), yte.max())) + 1)
    scale = 255.0 if xtr.dtype == np.uint8 else 1.0
    mean, std = channel_stats(xtr, scale)
    sets = [ArrayImages(x, y, mean, std, scale, k) for x, y in (train, test)]
    return ImageData("idx", spec, *sets, k, mean, std, xtr.shape[2:], 1)


@register_source("idx", "MNIST-family IDX files in a folder (train-/t10k-, optionally .gz)", path=True)
def _load(spec) -> ImageData:
    return load_idx_dir(spec.path, spec.text)
