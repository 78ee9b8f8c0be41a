"""An ImageFolder tree of JPEG/PNG files read with Pillow: ``--data folder:DIR`` or ``folder:DIR,size=64``.

Layout: ``DIR/train/CLASS/*.png`` with ``DIR/val/CLASS/…`` (or ``DIR/test/…``), the ImageNet layout; or
``DIR/CLASS/*`` alone, split 80 / 20 with a fixed seed. Classes are the sorted sub-folder names of the training
split; their index is the label. Every image is decoded when its batch is fetched (in ``--workers`` processes when
asked): converted to RGB (or to one channel when the first image is greyscale), its centred square (side: the
shorter side) resized to ``size × size`` (``size`` defaults to the shorter side of the first image), then
standardised with per-channel statistics measured on up to :data:`STATS_SAMPLE` training images (fixed seed).

Bounded decoding: an image's header is read before its pixels, and one whose declared size exceeds
:data:`MAX_IMAGE_PIXELS` is refused (Pillow's decompression-bomb check, as a one-line :class:`DataError`, its
warning never printed); the memory one batch decodes to is checked before decoding it. Cropping happens before
resizing, so a 1 × 60000 strip never becomes a 224 × 13-million-pixel image.
"""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..checks import check_memory
from ..errors import DataError, DataFileNotFoundError, SrrError, one_line
from ..io import check_regular_file
from .image_data import ImageData
from .images import BatchDataset, ChannelStats
from .sources import register_source
from .spec import Option
from .splits import seeded_split

__all__ = ["FolderImages", "load_folder", "IMAGE_EXTENSIONS", "MAX_IMAGE_PIXELS", "MAX_SIZE"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
STATS_SAMPLE = 512
STATS_CHUNK = 32
SPLIT_SEED = 0
TEST_FRACTION = 0.2
#: the most pixels an image file may declare (Pillow's default limit, 1024 × 1024 × 1024 // 4 // 3)
MAX_IMAGE_PIXELS = 89_478_485
#: the largest ``size=`` option
MAX_SIZE = 1 << 16
_BYTES_PER_PIXEL = 4 + 4 + 1  # decoded (up to 4 bands), float32 batch, uint8 stack


@contextmanager
def open_image(path: Path):
    """Open an image file (header only) with the decompression-bomb policy: its declared size must be at most
    :data:`MAX_IMAGE_PIXELS`, refused as one :class:`DataError` line, with no warning printed (Pillow's own
    warnings about a file's metadata are silenced while it is read)."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        check_regular_file(path)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            declared = f"{int(pixels.group(1)):,} pixels" if pixels else one_line(exc)
            raise DataError(f"{path}: refusing to decode an image of {declared}, more than {MAX_IMAGE_PIXELS:,} "
                            "(a decompression bomb?)") from None
        except FileNotFoundError:
            raise DataFileNotFoundError(f"image not found: {path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"{path}: cannot decode the image ({one_line(exc)})") from None
        with img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise DataError(f"{path}: refusing to decode an image of {w} x {h} = {w * h:,} pixels, more than "
                                f"{MAX_IMAGE_PIXELS:,} (a decompression bomb?)")
            if w == 0 or h == 0:
                raise DataError(f"{path}: zero-sized image ({w} x {h})")
            yield img


def _decode(path: Path, size: int, mode: str) -> np.ndarray:
    """One image as uint8 (C, size, size): the centred square of side min(w, h), resized to ``size``."""
    from PIL import Image

    try:
        with open_image(path) as img:
            img.draft(mode, (size, size))  # JPEG: decode at a reduced scale when that is enough
            w, h = img.size
            check_memory(w * h * 4 + size * size * 4, f"{path}: decoding a {w} x {h} image")
            img = img.convert(mode)
            m = min(w, h)
            box = ((w - m) // 2, (h - m) // 2, (w - m) // 2 + m, (h - m) // 2 + m)
            if m == size:
                img = img.crop(box)
            else:
                img = img.resize((size, size), Image.BILINEAR, box=box, reducing_gap=3.0)
            arr = np.asarray(img, dtype=np.uint8)
    except SrrError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot decode the image ({one_line(exc)})") from None
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
        """The uint8 batch (b, C, size, size), after checking that memory holds what it decodes to."""
        b, c, s = len(indices), self.channels, self.size
        check_memory(b * c * s * s * _BYTES_PER_PIXEL,
                     f"a batch of {b} image(s) of {c} x {s} x {s} (folder option size={s})")
        return torch.from_numpy(np.stack([_decode(self.files[i], s, self.mode) for i in indices]))

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


def load_folder(folder: str | Path, spec: str | None = None, size: int | None = None) -> ImageData:
    """Index an ImageFolder tree (files are decoded later, batch by batch)."""
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
    with open_image(files[0]) as first:
        mode = "L" if first.mode in ("1", "L", "I", "I;16", "F") else "RGB"
        size = size or min(first.size)
    train, test = FolderImages(files, labels, size, mode), FolderImages(test_files, test_labels, size, mode)
    g = torch.Generator().manual_seed(SPLIT_SEED)
    sample = sorted(torch.randperm(len(files), generator=g)[:STATS_SAMPLE].tolist())
    stats = ChannelStats(train.channels)
    for i in range(0, len(sample), STATS_CHUNK):
        stats.add(train.raw(sample[i:i + STATS_CHUNK]), 255.0)
    mean, std = stats.result()
    train.set_stats(mean, std)
    test.set_stats(mean, std)
    return ImageData("folder", spec, train, test, len(classes), mean, std, (size, size), train.channels)


@register_source("folder", "ImageFolder tree of JPEG/PNG: DIR/train/CLASS/*, DIR/val/CLASS/* "
                           "(folder:DIR or folder:DIR,size=64)", path=True,
                 options={"size": Option(int, None, low=1, high=MAX_SIZE)})
def _load(spec) -> ImageData:
    return load_folder(spec.path, spec.text, spec.options["size"])
