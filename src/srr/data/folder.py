"""An ImageFolder tree of JPEG/PNG files read with Pillow: ``--data folder:DIR`` or ``folder:DIR,size=64``.

Layout: ``DIR/train/CLASS/*.png`` with ``DIR/val/CLASS/…`` (or ``DIR/test/…``), the ImageNet layout; or
``DIR/CLASS/*`` alone, split 80 / 20 with a fixed seed. Classes are the sorted sub-folder names of the training
split; their index is the label. Every image is decoded when its batch is fetched (in ``--workers`` processes when
asked): converted to RGB (or to one channel when the first image is greyscale), its shorter side resized to
``size`` and centre-cropped to ``size × size`` (``size`` defaults to the shorter side of the first image), then
standardised with per-channel statistics measured on up to :data:`STATS_SAMPLE` training images (fixed seed).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ..errors import DataError, DataFileNotFoundError
from .dataset import register_source, seeded_split
from .images import BatchDataset, StreamedData, channel_stats

__all__ = ["FolderImages", "load_folder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
STATS_SAMPLE = 512
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def _decode(path: Path, size: int, mode: str) -> np.ndarray:
    """One image as uint8 (C, size, size): shorter side resized to ``size``, centre crop."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.draft(mode, (size, size))  # JPEG: decode at a reduced scale when that is enough
            img = img.convert(mode)
            w, h = img.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            if (nw, nh) != (w, h):
                img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
            left, top = (nw - size) // 2, (nh - size) // 2
            arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode the image ({exc})") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


class FolderImages(BatchDataset):
    """Image files with labels, decoded, resized and standardised per batch."""

    def __init__(self, files: Sequence[Path], labels: Sequence[int], size: int, mode: str,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        self.files, self.y = list(files), torch.as_tensor(list(labels), dtype=torch.long)
        self.size, self.mode = size, mode
        self.channels = 1 if mode == "L" else 3
        self.set_stats(mean or [0.0] * self.channels, std or [1.0] * self.channels)

    def set_stats(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def raw(self, indices: Sequence[int]) -> torch.Tensor:
        return torch.from_numpy(np.stack([_decode(self.files[i], self.size, self.mode) for i in indices]))

    def __getitems__(self, indices: Sequence[int]):
        x = self.raw(indices).to(torch.float32) / 255.0
        return (x - self.mean) / self.std, self.y[torch.as_tensor(list(indices), dtype=torch.long)]


def _scan(folder: Path, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    found = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = classes if classes is not None else found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{folder}: class folder(s) {unknown[:5]} do not exist in the training split")
    files, labels = [], []
    for k, name in enumerate(classes):
        d = folder / name
        if d.is_dir():
            for f in sorted(d.rglob("*")):
                if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file():
                    files.append(f)
                    labels.append(k)
    return files, labels, classes


def load_folder(folder: str | Path, spec: str | None = None, size: int | None = None) -> StreamedData:
    """Index an ImageFolder tree (files are decoded later, batch by batch)."""
    from PIL import Image

    folder = Path(folder).expanduser()
    spec = spec or f"folder:{folder}"
    if not folder.is_dir():
        raise DataFileNotFoundError(f"image folder not found: {folder}")
    test_dir = next((folder / n for n in ("val", "test") if (folder / n).is_dir()), None)
    if (folder / "train").is_dir() and test_dir is not None:
        files, labels, classes = _scan(folder / "train")
        test_files, test_labels, _ = _scan(test_dir, classes)
    else:
        all_files, all_labels, classes = _scan(folder)
        tr, te = (np.sort(i.numpy()) for i in seeded_split(len(all_files), TEST_FRACTION, SPLIT_SEED))
        files, labels = [all_files[i] for i in tr], [all_labels[i] for i in tr]
        test_files, test_labels = [all_files[i] for i in te], [all_labels[i] for i in te]
    if not files or not test_files:
        raise DataError(f"{spec}: no {'training' if not files else 'test'} images "
                        f"({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
    try:
        with Image.open(files[0]) as first:
            mode = "L" if first.mode in ("1", "L", "I", "I;16", "F") else "RGB"
            size = size or min(first.size)
    except OSError as exc:
        raise DataError(f"{files[0]}: cannot decode the image ({exc})") from None
    train, test = FolderImages(files, labels, size, mode), FolderImages(test_files, test_labels, size, mode)
    g = torch.Generator().manual_seed(SPLIT_SEED)
    sample = torch.randperm(len(files), generator=g)[:STATS_SAMPLE].tolist()
    mean, std = channel_stats(train.raw(sorted(sample)), 255.0)
    train.set_stats(mean, std)
    test.set_stats(mean, std)
    return StreamedData("folder", spec, train, test, len(classes), mean, std, (size, size), train.channels)


@register_source("folder", "ImageFolder tree of JPEG/PNG: DIR/train/CLASS/*, DIR/val/CLASS/* "
                           "(folder:DIR or folder:DIR,size=64)", takes_path=True)
def _load(arg: str | None, spec: str) -> StreamedData:
    m = re.fullmatch(r"(.+),size=(\d+)", arg)
    path, size = (m.group(1), int(m.group(2))) if m else (arg, None)
    if size is not None and size < 1:
        raise DataError(f"{spec}: size must be positive")
    return load_folder(path, spec, size)
