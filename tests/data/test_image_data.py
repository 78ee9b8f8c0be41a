"""ImageData, the one image data type: in-memory construction, what a model and a run read from it, and its checks."""
import numpy as np
import pytest
import torch

from srr.data import ArrayImages, ImageData, TensorImages, load_data
from srr.errors import DataError, ResourceError


def raw(n=12, c=3, h=4, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * 7 + 2, torch.arange(n) % 3


def test_from_tensors_standardises_with_the_training_statistics():
    x, y = raw()
    xt, yt = raw(6, seed=1)
    data = ImageData.from_tensors("toy", "toy:spec", x, y, xt, yt)
    mean, std = x.double().mean(dim=(0, 2, 3)), x.double().std(dim=(0, 2, 3))
    assert data.mean == pytest.approx(mean.tolist(), rel=1e-9) and data.std == pytest.approx(std.tolist(), rel=1e-9)
    assert data.x_train.dtype == torch.float32 and data.x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert torch.allclose(data.unnormalize(data.x_test), xt, atol=1e-5)
    assert data.num_classes == 3 and data.channels == 3 and data.image_size == (4, 5)
    assert data.model_overrides() == {"image_size": [4, 5], "channels": 3, "num_classes": 3}
    assert data.preprocessing() == {"mean": data.mean, "std": data.std, "image_size": [4, 5], "channels": 3}
    assert data.x_train is data.x_train and data.y_test.tolist() == yt.tolist()  # kept, not rebuilt
    assert isinstance(data.train_set, TensorImages) and data.spec == "toy:spec" and "12 train / 6 test" in repr(data)


def test_already_standardised_tensors_are_kept_as_given():
    x, y = raw()
    x[0, 0, 0, 0] = float("nan")  # the caller's choice (a divergence test feeds NaN on purpose)
    data = ImageData.from_tensors("pre", "pre", x, y, x[:4], y[:4], 5, mean=[0.0, 0, 0], std=[1.0, 1, 1])
    assert data.x_train is x and data.num_classes == 5 and data.mean == [0.0] * 3
    with pytest.raises(DataError, match="give both mean and std"):
        ImageData.from_tensors("pre", "pre", x, y, x, y, mean=[0.0, 0, 0])


def test_the_former_names_are_aliases_and_tensors_point_to_from_tensors():
    x, y = raw()
    with pytest.raises(TypeError, match="use ImageData.from_tensors"):
        ImageData("old", "old", x, y, x, y, 3, [0.0], [1.0])


@pytest.mark.parametrize("change,message", [
    (lambda x, y: (x, y.float()), r"toy: train labels must be integers, found torch.float32"),
    (lambda x, y: (x, y[:5]), r"toy: 5 train labels for 12 samples"),
    (lambda x, y: (x, torch.where(y == 1, -1, y)), r"toy: train labels must be non-negative, found -1"),
    (lambda x, y: (x, torch.where(y == 1, 2_000_000_000, y)), r"label 2000000000 implies 2,000,000,001 classes"),
    (lambda x, y: (x.index_fill(0, torch.tensor([3]), float("inf")), y), r"toy: train images: 60 non-finite pixel"),
    (lambda x, y: (x[:, :, :0], y), r"toy: train images: zero-sized images of shape C x H x W = 3 x 0 x 5"),
    (lambda x, y: (x[0], y), r"toy: train images: images must be \(n, C, H, W\), got shape \(3, 4, 5\)"),
    (lambda x, y: (x[:0], y[:0]), r"toy: the train split is empty"),
])
def test_from_tensors_refuses_bad_labels_and_pixels_with_one_line(change, message):
    x, y = change(*raw())
    xt, yt = raw(6, seed=1)
    with pytest.raises(DataError, match=message) as info:
        ImageData.from_tensors("toy", "toy", x, y, xt, yt)
    assert "\n" not in str(info.value)


def test_the_constructor_checks_labels_statistics_and_shapes():
    x, y = raw()
    sets = TensorImages(x, y), TensorImages(x[:4], y[:4])
    assert ImageData("t", "t", *sets, 3, [0.0] * 3, [1.0] * 3).image_size == (4, 5)
    for kwargs, message in [(dict(num_classes=2), r"t: label 2 is out of range for 2 classes \(train labels"),
                            (dict(mean=[0.0]), r"t: mean must be 3 finite number\(s\), one per channel"),
                            (dict(std=[1.0, 0.0, 1.0]), r"t: std must be positive"),
                            (dict(std=[1.0, float("nan"), 1.0]), r"std must be 3 finite"),
                            (dict(image_size=(4, 6)), r"train images of shape \(3, 4, 5\), expected \(3, 4, 6\)"),
                            (dict(num_classes=0), r"t: num_classes must be >= 1, got 0")]:
        args = dict(num_classes=3, mean=[0.0] * 3, std=[1.0] * 3) | kwargs
        with pytest.raises(DataError, match=message):
            ImageData("t", "t", *sets, **args)


def test_array_images_keep_an_nhwc_view_and_standardise_per_batch():
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    ds = ArrayImages(nhwc.transpose(0, 3, 1, 2), np.arange(6) % 2, [0.5] * 3, [0.25] * 3)
    assert ds.x.data_ptr() == nhwc.ctypes.data  # no copy
    x, y = ds.__getitems__([4, 1])
    assert np.allclose(x.numpy(), (nhwc[[4, 1]].transpose(0, 3, 1, 2) / 255 - 0.5) / 0.25, atol=1e-6)
    assert y.tolist() == [0, 1]
    with pytest.raises(DataError, match="labels must be integers, found float64"):
        ArrayImages(nhwc, np.full(6, np.nan), [0.0] * 5, [1.0] * 5)


def test_streamed_splits_materialise_once_after_a_memory_check(monkeypatch):
    data = load_data("synthetic:k=2,d=8,n=20")
    assert data.x_train is data.train_set.x  # already tensors: nothing to build
    x, y = raw()
    arrays = ImageData("a", "a", ArrayImages(x, y, [0.0] * 3, [1.0] * 3), ArrayImages(x, y, [0.0] * 3, [1.0] * 3),
                       3, [0.0] * 3, [1.0] * 3)
    monkeypatch.setenv("SRR_MEMORY_LIMIT", "1000")
    with pytest.raises(ResourceError, match=r"a: the train split as float32 needs about 5.6 KiB, more than the 900 B"):
        arrays.x_train
    monkeypatch.delenv("SRR_MEMORY_LIMIT")
    assert arrays.x_train is arrays.x_train and torch.allclose(arrays.x_train, x)


def test_the_first_images_keep_the_standardisation_and_refuse_bad_counts():
    from srr.errors import ConfigError

    g = torch.Generator().manual_seed(0)
    data = ImageData.from_tensors("t", "t", torch.rand(20, 1, 4, 4, generator=g) * 5, torch.arange(20) % 3,
                                   torch.rand(6, 1, 4, 4, generator=g), torch.arange(6) % 3)
    head = data.first(7, 100)
    assert (len(head.y_train), len(head.y_test)) == (7, 6) and head.num_classes == 3
    assert torch.equal(head.x_train, data.x_train[:7]) and head.mean == data.mean and head.std == data.std
    assert head.spec == "t (first 7 / 6)"
    with pytest.raises(ConfigError, match="n_train"):
        data.first(0, 3)
