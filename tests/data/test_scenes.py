"""``--data scenes``: seeded scenes of digit glyphs whose masks mark exactly the glyph pixels placed."""
import numpy as np
import pytest

from srr.data import load_data
from srr.data.scenes import load_glyphs, make_scenes
from srr.errors import ConfigError, DataError


def nearest(glyph, side):
    """The nearest-neighbour scaling written pixel by pixel."""
    h, w = glyph.shape
    return np.array([[glyph[int(r * h / side), int(c * w / side)] for c in range(side)] for r in range(side)])


@pytest.fixture(scope="module")
def glyphs():
    return load_glyphs("digits")


def test_masks_are_pixel_exact(glyphs):
    g, labels = glyphs["train"]
    s = make_scenes(g, labels, 60, size=32, seed=3)
    placed_total = 0
    for i in range(len(s)):
        rows = [r for r in s.objects[i] if r[0] >= 0]
        assert 1 <= len(rows) <= 3
        expected = np.zeros((32, 32), dtype=np.int64)
        for j, (cls, gi, top, left, side, pixels) in enumerate(rows, start=1):
            scaled = nearest(g[gi], side)
            on = scaled > 0.5
            assert cls == labels[gi] and pixels == on.sum()
            expected[top:top + side, left:left + side][on] = j
            assert np.allclose(s.images[i, top:top + side, left:left + side][on], scaled[on])  # painted glyph values
            assert (s.masks[i] == j).sum() == pixels  # the mask's count equals the glyph pixels placed
            placed_total += pixels
        assert np.array_equal(s.masks[i], expected)
        sizes = [r[5] for r in rows]
        assert s.labels[i] == rows[int(np.argmax(sizes))][0]  # the largest object's class
        assert set(np.flatnonzero(s.present[i])) == {r[0] for r in rows}
    assert (s.masks > 0).sum() == placed_total


def test_scenes_are_deterministic_by_seed():
    a, b, c = (load_data(f"scenes:n=20,test=10,seed={k}") for k in (5, 5, 6))
    for split in ("train", "test"):
        assert np.array_equal(a.scenes[split].images, b.scenes[split].images)
        assert np.array_equal(a.scenes[split].masks, b.scenes[split].masks)
    assert not np.array_equal(a.scenes["train"].images, c.scenes["train"].images)
    assert a.image_size == (32, 32) and a.num_classes == 10 and len(a.train_set) == 20 and len(a.test_set) == 10
    x, y = a.test_set.__getitems__([0, 1])
    assert x.shape == (2, 1, 32, 32) and list(y) == list(a.scenes["test"].labels[:2])


def test_options_are_checked(glyphs):
    g, labels = glyphs["train"]
    with pytest.raises(ConfigError, match="background must be one of"):
        make_scenes(g, labels, 2, background="stars")
    with pytest.raises(ConfigError, match="min_glyph <= max_glyph <= size"):
        make_scenes(g, labels, 2, size=12, max_glyph=16)
    with pytest.raises(DataError):
        load_data("scenes:objects=4")
    one = make_scenes(g, labels, 30, objects=1, background="plain", seed=1)
    assert (one.objects[:, 1:, 0] == -1).all() and (one.images[one.masks == 0] == 0).all()


def test_mnist_glyphs(mnist_dir):
    data = load_data(f"scenes:glyphs={mnist_dir},n=8,test=4,size=48,min_glyph=20,max_glyph=28")
    s = data.scenes["train"]
    assert s.images.shape == (8, 48, 48) and (s.masks > 0).any()
    assert ((s.objects[:, :, 4] >= 20) | (s.objects[:, :, 4] == -1)).all()
