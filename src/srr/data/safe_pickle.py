"""Reading pickles of plain data (dicts, lists, strings, numbers, NumPy arrays) from untrusted files.

Two layers, both before anything large is built:

1. :func:`scan_pickle` walks the opcodes (``pickletools.genops``, which reads and builds nothing): every declared
   length must be present in the file, and memo indices must stay below the number of opcodes seen (a forged
   ``LONG_BINPUT 2**28`` would make the unpickler allocate a 2 GB memo from twelve bytes).
2. :class:`SafeUnpickler` resolves only the globals that rebuild a plain NumPy array, each narrowed to what a
   pickler writes for one: ``_reconstruct(ndarray, (0,), ...)`` (the data then comes from the file, never from a
   declared shape), ``dtype``, ``_codecs.encode(str, "latin1")`` (how protocol 2 spells bytes; any other codec could
   expand a string without bound) and ``bytes()`` with no argument (``bytes(10**10)`` would allocate 10 GB).
   Every other global is refused, so a crafted file cannot run code.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import struct

import numpy as np

from ..checks import check_memory
from ..errors import DataError, DataFileNotFoundError, one_line

__all__ = ["SafeUnpickler", "safe_unpickle", "scan_pickle"]

_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _reconstruct(cls, shape, dtype):
    if cls is not np.ndarray or tuple(shape) != (0,):
        raise pickle.UnpicklingError(f"refusing to build an array of {cls!r} with the declared shape {shape!r} "
                                     "(a pickled array's data comes from the file)")
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


def _encode(obj, encoding="utf-8", errors="strict"):
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with the codec {encoding!r}")
    return obj.encode("latin-1", errors)


def _bytes(*args):
    if args:
        raise pickle.UnpicklingError("refusing bytes() with arguments (it could allocate any size)")
    return b""


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct, ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _encode,  # Python 3 protocol-2 pickles spell bytes as encode(str, "latin1")
    ("builtins", "bytes"): _bytes, ("__builtin__", "bytes"): _bytes,  # an empty array's data, b""
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, strings, bytes, numbers and plain NumPy arrays."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")


def scan_pickle(raw: bytes, path) -> None:
    """Walk the opcodes of ``raw`` without building anything; refuse declared lengths beyond the file and memo
    indices no pickler writes."""
    count = 0
    try:
        for op, arg, pos in pickletools.genops(io.BytesIO(raw)):
            count += 1
            if op.name == "FRAME" and int(arg) > len(raw) - pos:
                raise DataError(f"{path}: truncated or corrupt pickle (a frame of {int(arg):,} bytes at byte {pos} "
                                f"of {len(raw):,})")
            if op.name in _MEMO_PUTS and int(arg) > count:
                raise DataError(f"{path}: truncated or corrupt pickle (memo index {int(arg):,} at byte {pos} after "
                                f"{count:,} opcodes)")
    except (ValueError, struct.error, OverflowError, IndexError, KeyError, UnicodeError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: truncated or corrupt pickle ({one_line(exc)})") from None


def _check_plain(obj, path, depth: int = 0) -> None:
    if depth > 4:
        raise DataError(f"{path}: nested too deeply for a plain batch")
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise DataError(f"{path}: holds an object array; refusing it")
    if isinstance(obj, dict):
        for value in obj.values():
            _check_plain(value, path, depth + 1)


def safe_unpickle(path, what: str = "CIFAR batch") -> dict:
    """Read one pickled dict (a CIFAR batch) with :class:`SafeUnpickler` after :func:`scan_pickle`
    (``encoding="bytes"``: Python 2 strings stay bytes; bytes keys are decoded as latin-1)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, io.SEEK_END)
            check_memory(3 * size, f"{path}: reading a {what} of {size:,} bytes")
            fh.seek(0)
            raw = fh.read()
    except FileNotFoundError:
        raise DataFileNotFoundError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    scan_pickle(raw, path)
    try:
        obj = SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if "refusing" in str(exc):
            raise DataError(f"{path}: not a plain {what} ({one_line(exc)})") from None
        raise DataError(f"{path}: truncated or corrupt pickle ({one_line(exc)})") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError) as exc:
        raise DataError(f"{path}: truncated or corrupt pickle ({type(exc).__name__}: {one_line(exc)})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: a {what} is a dict, found {type(obj).__name__}")
    _check_plain(obj, path)
    return {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
