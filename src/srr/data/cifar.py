"""CIFAR-10 and CIFAR-100 "python version" batches from a user's folder: ``--data cifar10:DIR``, ``cifar100:DIR``.

``DIR`` is the extracted ``cifar-10-batches-py`` (``data_batch_1`` … ``data_batch_5``, ``test_batch``) or
``cifar-100-python`` (``train``, ``test``) folder, or a folder holding it. Each file is a pickle of a dict with
``b"data"`` (n × 3072 uint8, channel-major rows of 32 × 32) and ``b"labels"`` (CIFAR-10) or ``b"fine_labels"``
(CIFAR-100; ``cifar100:DIR,coarse`` takes the 20 ``b"coarse_labels"`` instead).

The pickles are read by :class:`SafeUnpickler`, which resolves only the few globals that rebuild a plain NumPy
array (``_reconstruct``, ``ndarray``, ``dtype``, and ``_codecs.encode`` for bytes in protocol 2) and refuses every other global, so a crafted file cannot run code;
object arrays are refused too. The images stay uint8 in memory and are standardised per batch with the usual
constants of each data set (:data:`CIFAR10_STATS`, :data:`CIFAR100_STATS`).
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError, DataFileNotFoundError, one_line
from .dataset import register_source
from .images import ArrayImages, StreamedData, check_labels

__all__ = ["SafeUnpickler", "safe_unpickle", "load_cifar", "CIFAR10_STATS", "CIFAR100_STATS"]

CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # Python 3 protocol-2 pickles spell bytes as encode(str, "latin1")
    ("builtins", "bytes"), ("__builtin__", "bytes"),  # an empty array's data, b""
}
_LAYOUT = {
    "cifar10": (["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"], ["test_batch"],
                "cifar-10-batches-py"),
    "cifar100": (["train"], ["test"], "cifar-100-python"),
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, strings, bytes, numbers and plain NumPy arrays."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            import importlib

            return getattr(importlib.import_module("builtins" if module == "__builtin__" else module), name)
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")


def _check_plain(obj, path: Path, depth: int = 0) -> None:
    if depth > 4:
        raise DataError(f"{path}: nested too deeply for a CIFAR batch")
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise DataError(f"{path}: holds an object array; refusing it")
    if isinstance(obj, dict):
        for value in obj.values():
            _check_plain(value, path, depth + 1)


def safe_unpickle(path: str | Path) -> dict:
    """Read one CIFAR pickle with :class:`SafeUnpickler` (``encoding="bytes"``: Python 2 strings stay bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFileNotFoundError(f"CIFAR batch not found: {path}") from None
    try:
        obj = SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if "refusing" in str(exc):
            raise DataError(f"{path}: not a plain CIFAR batch ({exc})") from None
        raise DataError(f"{path}: truncated or corrupt pickle ({one_line(exc)})") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError) as exc:
        raise DataError(f"{path}: truncated or corrupt pickle ({type(exc).__name__}: {one_line(exc)})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: a CIFAR batch is a dict, found {type(obj).__name__}")
    _check_plain(obj, path)
    return {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_unpickle(path)
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{path}: a CIFAR batch needs 'data' and '{label_key}', found {sorted(batch)[:6]}")
    data, labels = np.asarray(batch["data"]), np.asarray(batch[label_key])
    if len(data) == 0:
        raise DataError(f"{path}: the batch holds no images")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' must be n x 3072 uint8, found {data.shape} {data.dtype}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {len(data)} images but labels of shape {labels.shape} ({labels.dtype})")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar(kind: str, folder: str | Path, spec: str | None = None, coarse: bool = False) -> StreamedData:
    """Load ``kind`` ∈ {``cifar10``, ``cifar100``} from ``folder`` as uint8 arrays behind :class:`StreamedData`."""
    train_names, test_names, subdir = _LAYOUT[kind]
    folder = Path(folder).expanduser()
    spec = spec or f"{kind}:{folder}"
    if not folder.is_dir():
        raise DataFileNotFoundError(f"CIFAR folder not found: {folder}")
    if not (folder / test_names[0]).is_file() and (folder / subdir).is_dir():
        folder = folder / subdir
    missing = [n for n in train_names + test_names if not (folder / n).is_file()]
    if missing:
        raise DataFileNotFoundError(f"{folder} lacks the {kind} file(s) {', '.join(missing)}")
    label_key = "labels" if kind == "cifar10" else ("coarse_labels" if coarse else "fine_labels")
    parts = {split: [_read_batch(folder / n, label_key) for n in names]
             for split, names in (("train", train_names), ("test", test_names))}
    k = 10 if kind == "cifar10" else (20 if coarse else 100)
    mean, std = CIFAR10_STATS if kind == "cifar10" else CIFAR100_STATS
    sets = {}
    for split, batches in parts.items():
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        check_labels(spec, split, y, k)
        sets[split] = ArrayImages(x, y, mean, std)
    return StreamedData(kind, spec, sets["train"], sets["test"], k, mean, std, (32, 32), 3)


def _arg(arg: str, kind: str) -> tuple[str, bool]:
    if kind == "cifar100" and arg.endswith(",coarse"):
        return arg[: -len(",coarse")], True
    return arg, False


@register_source("cifar10", "CIFAR-10 python batches in a folder (cifar10:DIR)", takes_path=True)
def _load10(arg: str | None, spec: str) -> StreamedData:
    return load_cifar("cifar10", arg, spec)


@register_source("cifar100", "CIFAR-100 python batches in a folder (cifar100:DIR or cifar100:DIR,coarse)",
                 takes_path=True)
def _load100(arg: str | None, spec: str) -> StreamedData:
    path, coarse = _arg(arg, "cifar100")
    return load_cifar("cifar100", path, spec, coarse)
