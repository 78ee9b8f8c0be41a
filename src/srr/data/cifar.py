"""CIFAR-10 and CIFAR-100 "python version" batches from a user's folder: ``--data cifar10:DIR``, ``cifar100:DIR``.

``DIR`` is the extracted ``cifar-10-batches-py`` (``data_batch_1`` … ``data_batch_5``, ``test_batch``) or
``cifar-100-python`` (``train``, ``test``) folder, or a folder holding it. Each file is a pickle of a dict with
``b"data"`` (n × 3072 uint8, channel-major rows of 32 × 32) and ``b"labels"`` (CIFAR-10) or ``b"fine_labels"``
(CIFAR-100; ``cifar100:DIR,coarse`` takes the 20 ``b"coarse_labels"`` instead).

The pickles are read by :func:`srr.data.safe_pickle.safe_unpickle` (opcodes scanned first, only the globals of a
plain NumPy array, nothing else), so a crafted file can neither run code nor make the reader allocate more than the
file holds. The images stay uint8 in memory and are standardised per batch with the usual constants of each data set
(:data:`CIFAR10_STATS`, :data:`CIFAR100_STATS`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import check_labels, check_memory
from ..errors import DataError, DataFileNotFoundError
from .image_data import ImageData
from .images import ArrayImages
from .safe_pickle import SafeUnpickler, safe_unpickle
from .sources import register_source

__all__ = ["SafeUnpickler", "safe_unpickle", "load_cifar", "CIFAR10_STATS", "CIFAR100_STATS"]

CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))

_LAYOUT = {
    "cifar10": (["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"], ["test_batch"],
                "cifar-10-batches-py"),
    "cifar100": (["train"], ["test"], "cifar-100-python"),
}


def _labels(values, path: Path, label_key: str) -> np.ndarray:
    """A list of Python ints (as pickled) or an integer array, as an array — without converting anything else
    (a list of n references to one large string would become an n-times-larger array)."""
    if isinstance(values, (list, tuple)):
        wrong = next((v for v in values if not isinstance(v, (int, np.integer)) or isinstance(v, bool)), None)
        if wrong is not None:
            raise DataError(f"{path}: {label_key} must be integers, found {type(wrong).__name__}")
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            raise DataError(f"{path}: {label_key} hold an integer beyond int64") from None
    if isinstance(values, np.ndarray):
        return values
    raise DataError(f"{path}: {label_key} must be a list or array of integers, found {type(values).__name__}")


def _read_batch(path: Path, label_key: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_unpickle(path)
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{path}: a CIFAR batch needs 'data' and '{label_key}', found {sorted(map(str, batch))[:6]}")
    data = batch["data"]
    if not isinstance(data, np.ndarray):
        raise DataError(f"{path}: 'data' must be n x 3072 uint8, found {type(data).__name__}")
    if data.ndim >= 1 and len(data) == 0:
        raise DataError(f"{path}: the batch holds no images")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' must be n x 3072 uint8, found {data.shape} {data.dtype}")
    labels, _ = check_labels(_labels(batch[label_key], path, label_key), k, name=label_key,
                             count=len(data), where=str(path))
    return data.reshape(-1, 3, 32, 32), labels.numpy()


def load_cifar(kind: str, folder: str | Path, spec: str | None = None, coarse: bool = False) -> ImageData:
    """Load ``kind`` ∈ {``cifar10``, ``cifar100``} from ``folder`` as uint8 arrays behind :class:`ImageData`."""
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
    k = 10 if kind == "cifar10" else (20 if coarse else 100)
    mean, std = CIFAR10_STATS if kind == "cifar10" else CIFAR100_STATS
    sets = []
    for names in (train_names, test_names):
        batches = [_read_batch(folder / n, label_key, k) for n in names]
        check_memory(sum(b[0].nbytes + b[1].nbytes for b in batches), f"{spec}: {len(batches)} batch(es) joined")
        x = np.concatenate([b[0] for b in batches]) if len(batches) > 1 else batches[0][0]
        y = np.concatenate([b[1] for b in batches]) if len(batches) > 1 else batches[0][1]
        sets.append(ArrayImages(x, y, mean, std, num_classes=k))
    return ImageData(kind, spec, *sets, k, mean, std, (32, 32), 3)


@register_source("cifar10", "CIFAR-10 python batches in a folder (cifar10:DIR)", path=True)
def _load10(spec) -> ImageData:
    return load_cifar("cifar10", spec.path, spec.text)


@register_source("cifar100", "CIFAR-100 python batches in a folder (cifar100:DIR or cifar100:DIR,coarse)", path=True,
                 options={"coarse": bool})
def _load100(spec) -> ImageData:
    return load_cifar("cifar100", spec.path, spec.text, spec.options["coarse"])
