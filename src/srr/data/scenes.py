"""Scenes: images composed of 1–3 digit glyphs on cluttered backgrounds, with pixel-exact object masks.

``--data scenes[:glyphs=PATH][,n=…,test=…,size=…,objects=…,min_objects=…,min_glyph=…,max_glyph=…,
background=…,noise=…,seed=…]``. Every scene is a ``size × size`` grey image in [0, 1], built from a seeded NumPy
generator (the same options give the same images, bit for bit):

1. **Background** (``background``): ``noise`` — uniform noise in [0, ``noise``]; ``strokes`` — that noise plus 2–4
   random straight strokes (one pixel wide, intensity in [0.4, 1]); ``fragments`` — the noise plus 1–3 fragments of
   other glyphs (a random sub-square of half to three quarters of a glyph's side, scaled, intensity as the glyph);
   ``mixed`` (default) — noise, strokes and fragments together; ``plain`` — zeros.
2. **Objects**: K glyphs, K uniform in [``min_objects``, ``objects``] (1 to 3 by default), each a random glyph of the
   split's glyph set scaled by nearest neighbour to a side s uniform in [``min_glyph``, ``max_glyph``] pixels
   (``out[r, c] = glyph[⌊r·h/s⌋, ⌊c·w/s⌋]``) at a random position where its s × s box overlaps no earlier object's
   box (drawn up to 50 times, else the object is left out — every scene keeps at least its first object). The glyph's
   *pixels* are those of the scaled glyph above ½ (glyph values in [0, 1]); they are painted over the background with
   their glyph values, and the object mask marks exactly them.

Per scene: ``masks`` (size × size, 0 background, j = 1 … K object j), ``objects`` (K rows: class, glyph index, top,
left, side, pixel count; −1 rows pad to 3), the label of classification — the class of the object with the most
pixels (ties: the first placed) — and ``present`` (10 flags: the classes in the scene).

Glyphs: scikit-learn's embedded 8 × 8 digits (default; values / 16) or the images of an MNIST-format IDX folder
(``glyphs=PATH``; values / 255). Training scenes take glyphs from the glyph set's training split and test scenes from
its test split (for digits the fixed split of ``--data digits``), so no glyph is shared between the splits. As
``ImageData`` the images are standardised by the training scenes' mean and standard deviation; the scene arrays are
kept on it as ``data.scenes["train"]`` and ``data.scenes["test"]`` (:class:`Scenes`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_memory
from ..errors import ConfigError
from .image_data import ImageData
from .sources import register_source
from .spec import Option
from .splits import seeded_split

__all__ = ["Scenes", "make_scenes", "scale_glyph", "load_glyphs", "BACKGROUNDS", "OPTIONS"]

BACKGROUNDS = ("mixed", "noise", "strokes", "fragments", "plain")
PLACEMENT_TRIES = 50
MAX_OBJECTS = 3


@dataclass
class Scenes:
    images: np.ndarray  # (n, size, size) float32 in [0, 1]
    masks: np.ndarray  # (n, size, size) int64: 0 background, j = 1..K object j
    objects: np.ndarray  # (n, 3, 6) int64: class, glyph index, top, left, side, pixels; -1 rows pad
    labels: np.ndarray  # (n,) the class of the largest object
    present: np.ndarray  # (n, 10) bool: the classes in the scene

    def __len__(self) -> int:
        return len(self.images)

    def foreground(self) -> np.ndarray:
        """(n, size, size) bool: the pixels of any object."""
        return self.masks > 0


def scale_glyph(glyph: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour scaling of a (h, w) glyph to (side, side): ``out[r, c] = glyph[⌊r·h/side⌋, ⌊c·w/side⌋]``."""
    h, w = glyph.shape
    rows = (np.arange(side) * h) // side
    cols = (np.arange(side) * w) // side
    return glyph[rows[:, None], cols[None, :]]


def _stroke(img: np.ndarray, rng: np.random.Generator) -> None:
    size = img.shape[0]
    (r0, c0), (r1, c1) = rng.integers(0, size, 2), rng.integers(0, size, 2)
    steps = int(max(abs(r1 - r0), abs(c1 - c0))) + 1
    value = rng.uniform(0.4, 1.0)
    rr = np.rint(np.linspace(r0, r1, steps)).astype(int)
    cc = np.rint(np.linspace(c0, c1, steps)).astype(int)
    img[rr, cc] = np.maximum(img[rr, cc], value)


def _fragment(img: np.ndarray, glyphs: np.ndarray, rng: np.random.Generator, lo: int, hi: int) -> None:
    size = img.shape[0]
    g = glyphs[rng.integers(len(glyphs))]
    h = g.shape[0]
    part = int(rng.integers(max(1, h // 2), max(2, 3 * h // 4) + 1))
    r, c = rng.integers(0, h - part + 1, 2)
    side = int(rng.integers(max(2, lo // 2), max(3, hi // 2) + 1))
    piece = scale_glyph(g[r:r + part, c:c + part], side)
    top, left = rng.integers(0, size - side + 1, 2) if side <= size else (0, 0)
    piece = piece[: size - top, : size - left]
    view = img[top:top + piece.shape[0], left:left + piece.shape[1]]
    np.maximum(view, piece, out=view)


def _background(size: int, kind: str, noise: float, glyphs: np.ndarray, rng: np.random.Generator,
                lo: int, hi: int) -> np.ndarray:
    img = np.zeros((size, size), dtype=np.float64)
    if kind == "plain":
        return img
    img += rng.uniform(0.0, noise, (size, size))
    if kind in ("strokes", "mixed"):
        for _ in range(int(rng.integers(2, 5))):
            _stroke(img, rng)
    if kind in ("fragments", "mixed"):
        for _ in range(int(rng.integers(1, 4))):
            _fragment(img, glyphs, rng, lo, hi)
    return img


def _overlaps(box, boxes) -> bool:
    t, l, s = box
    return any(t < t2 + s2 and t2 < t + s and l < l2 + s2 and l2 < l + s for t2, l2, s2 in boxes)


def make_scenes(glyphs: np.ndarray, glyph_labels: np.ndarray, n: int, *, size: int = 32, objects: int = 3,
                min_objects: int = 1, min_glyph: int = 10, max_glyph: int = 16, background: str = "mixed",
                noise: float = 0.3, seed: int = 0) -> Scenes:
    """``n`` scenes from ``glyphs`` (G, h, w) in [0, 1] with classes ``glyph_labels`` (module docstring)."""
    if background not in BACKGROUNDS:
        raise ConfigError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    if not 1 <= min_objects <= objects <= MAX_OBJECTS:
        raise ConfigError(f"need 1 <= min_objects <= objects <= {MAX_OBJECTS}, got {min_objects} and {objects}")
    if not 1 <= min_glyph <= max_glyph <= size:
        raise ConfigError(f"need 1 <= min_glyph <= max_glyph <= size, got {min_glyph}, {max_glyph} and {size}")
    check_memory(n * size * size * 16, f"scenes: {n:,} images of {size}x{size} and their masks")
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    table = np.full((n, MAX_OBJECTS, 6), -1, dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    present = np.zeros((n, 10), dtype=bool)
    for i in range(n):
        img = _background(size, background, noise, glyphs, rng, min_glyph, max_glyph)
        k = int(rng.integers(min_objects, objects + 1))
        boxes: list[tuple[int, int, int]] = []
        for j in range(k):
            gi = int(rng.integers(len(glyphs)))
            side = int(rng.integers(min_glyph, max_glyph + 1))
            for _ in range(PLACEMENT_TRIES):
                top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
                if not _overlaps((top, left, side), boxes):
                    break
            else:
                continue  # no room: this object is left out
            scaled = scale_glyph(glyphs[gi], side)
            on = scaled > 0.5
            view = img[top:top + side, left:left + side]
            view[on] = scaled[on]
            masks[i, top:top + side, left:left + side][on] = len(boxes) + 1
            table[i, len(boxes)] = (glyph_labels[gi], gi, top, left, side, int(on.sum()))
            boxes.append((top, left, side))
        placed = table[i, : len(boxes)]
        labels[i] = placed[int(np.argmax(placed[:, 5])), 0]
        present[i, placed[:, 0]] = True
        images[i] = np.clip(img, 0.0, 1.0)
    return Scenes(images, masks, table, labels, present)


def load_glyphs(source: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (glyphs, labels), "test": …}``: glyphs (G, h, w) in [0, 1] of the embedded digits or an IDX
    folder."""
    if source == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x, y = bunch.images.astype(np.float64) / 16.0, bunch.target.astype(np.int64)
        train, test = (i.numpy() for i in seeded_split(len(x), 0.2, 0))
        return {"train": (x[train], y[train]), "test": (x[test], y[test])}
    from .idx import load_idx_dir

    data = load_idx_dir(source, f"scenes:glyphs={source}")
    out = {}
    for split, ds in (("train", data.train_set), ("test", data.test_set)):
        x = ds.x.numpy().astype(np.float64)[:, 0]
        out[split] = (x / (255.0 if ds.x.dtype == torch.uint8 else max(1.0, float(x.max()))), ds.y.numpy())
    return out


OPTIONS = {
    "glyphs": Option(str, "digits"), "n": Option(int, 2000, low=1, high=1 << 24),
    "test": Option(int, 500, low=1, high=1 << 24), "size": Option(int, 32, low=4, high=1024),
    "objects": Option(int, 3, low=1, high=MAX_OBJECTS), "min_objects": Option(int, 1, low=1, high=MAX_OBJECTS),
    "min_glyph": Option(int, 10, low=1, high=1024), "max_glyph": Option(int, 16, low=1, high=1024),
    "background": Option(str, "mixed"), "noise": Option(float, 0.3, low=0.0, high=1.0),
    "seed": Option(int, 0, low=0, high=2**63 - 1),
}


@register_source("scenes", "1-3 digit glyphs on cluttered backgrounds with pixel-exact masks (scenes:n=2000,test=500,"
                           "size=32,objects=3,glyphs=digits|PATH,background=mixed,seed=0)", options=OPTIONS)
def load_scenes(spec) -> ImageData:
    o = dict(spec.options)
    glyphs = load_glyphs(o.pop("glyphs"))
    n, n_test, seed = o.pop("n"), o.pop("test"), o.pop("seed")
    scenes = {"train": make_scenes(*glyphs["train"], n, seed=seed, **o),
              "test": make_scenes(*glyphs["test"], n_test, seed=seed + 1, **o)}
    x = {k: torch.from_numpy(s.images).unsqueeze(1) for k, s in scenes.items()}
    y = {k: torch.from_numpy(s.labels) for k, s in scenes.items()}
    data = ImageData.from_tensors("scenes", spec.text, x["train"], y["train"], x["test"], y["test"], num_classes=10)
    data.scenes = scenes
    return data
