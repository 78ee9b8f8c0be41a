"""Checks of image arrays and compressed sizes, for the readers of untrusted files (beside :mod:`srr.checks`).

* :func:`check_image_shape` — images are (n, C, H, W) with no axis of size 0 (a 0 × 0 image has no statistics).
* :func:`check_finite_pixels` — no NaN or ±inf pixel, scanned by chunks (one NaN would poison the standardisation).
* :func:`check_inflated_size` — what a deflate stream (gzip, zip) promises cannot exceed what its compressed bytes
  can hold: deflate expands at most :data:`MAX_DEFLATE_RATIO` to one, so a larger promise is a lie, refused before
  anything is allocated.
"""
from __future__ import annotations

import numpy as np

from ..checks import format_bytes
from ..errors import DataError

__all__ = ["check_image_shape", "check_finite_pixels", "check_inflated_size", "MAX_DEFLATE_RATIO", "CHUNK_BYTES"]

#: deflate codes 258 bytes in at least 2 bits (a length and a distance symbol), hence at most 1032 bytes per byte
MAX_DEFLATE_RATIO = 1032
#: bytes of pixels scanned or converted at once
CHUNK_BYTES = 1 << 24


def check_image_shape(shape, what: str) -> None:
    """Refuse images that are not (n, C, H, W) with C, H and W positive."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise DataError(f"{what}: images must be (n, C, H, W), got shape {shape}")
    if 0 in shape[1:]:
        raise DataError(f"{what}: zero-sized images of shape C x H x W = {shape[1]} x {shape[2]} x {shape[3]}")


def check_finite_pixels(x, what: str) -> None:
    """Refuse a floating-point array or tensor holding NaN or ±inf, naming the count; integers pass unread."""
    is_float = x.is_floating_point() if hasattr(x, "is_floating_point") else np.issubdtype(x.dtype, np.floating)
    if not is_float or len(x) == 0:
        return
    per_row = max(1, int(np.prod(x.shape[1:])) * x.dtype.itemsize)
    step = max(1, CHUNK_BYTES // per_row)
    bad = 0
    for i in range(0, len(x), step):
        part = np.asarray(x[i:i + step])
        bad += int(part.size - np.count_nonzero(np.isfinite(part)))
    if bad:
        raise DataError(f"{what}: {bad:,} non-finite pixel value(s) (NaN or inf); refusing data that would poison "
                        "the standardisation")


def check_inflated_size(promised: int, compressed: int, what: str) -> None:
    """Refuse a deflate stream of ``compressed`` bytes that promises more than it can hold once inflated."""
    limit = compressed * MAX_DEFLATE_RATIO + 1024
    if promised > limit:
        raise DataError(f"{what} promises {promised:,} bytes ({format_bytes(promised)}), more than "
                        f"{compressed:,} compressed bytes can hold (at most {limit:,}); truncated or forged")
