"""Data sources: embedded digits, IDX files written in the real format, the synthetic subspace mixture."""
import gzip
import struct

import numpy as np
import pytest
import torch

from srr.data import ImageData, load_data, mixture_of_subspaces, read_idx, token_sets
from srr.errors import DataError

from idx_files import make_mnist_like


def test_digits_split_is_fixed_and_standardised():
    a, b = load_data("digits"), load_data("digits")
    assert a.x_train.shape == (1438, 1, 8, 8) and a.x_test.shape == (359, 1, 8, 8)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert abs(float(a.x_train.mean())) < 1e-5 and float(a.x_train.std()) == pytest.approx(1.0, abs=1e-3)
    assert a.num_classes == 10 and a.model_overrides() == {"image_size": 8, "channels": 1, "num_classes": 10}
    assert isinstance(a, ImageData) and a.preprocessing() == {"mean": a.mean, "std": a.std, "image_size": [8, 8],
                                                              "channels": 1}
    raw = a.unnormalize(a.x_train)
    assert float(raw.min()) == pytest.approx(0.0, abs=1e-5) and float(raw.max()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_round_trip(tmp_path, gz):
    arrays = make_mnist_like(tmp_path / "m", gz=gz)
    assert np.array_equal(read_idx(tmp_path / "m" / f"train-images-idx3-ubyte{'.gz' if gz else ''}"),
                          arrays["train"][0])
    data = load_data(f"idx:{tmp_path / 'm'}")
    assert data.x_train.shape == (30, 1, 6, 6) and data.x_test.shape == (10, 1, 6, 6)
    raw = data.unnormalize(data.x_test)[:, 0].numpy() * 255
    assert np.allclose(raw, arrays["t10k"][0], atol=1e-3)
    assert data.y_test.tolist() == arrays["t10k"][1].tolist()


def test_idx_single_pair_gets_seeded_split(tmp_path):
    make_mnist_like(tmp_path / "m")
    for f in (tmp_path / "m").glob("train-*"):
        f.unlink()
    a, b = load_data(f"idx:{tmp_path / 'm'}"), load_data(f"idx:{tmp_path / 'm'}")
    assert len(a.x_train) == 8 and len(a.x_test) == 2
    assert torch.equal(a.y_test, b.y_test)


def test_shared_mnist_split(mnist_dir):
    data = load_data(f"idx:{mnist_dir}")
    assert data.x_train.shape == (8000, 1, 28, 28) and data.x_test.shape == (2000, 1, 28, 28)
    assert sorted(set(data.y_test.tolist())) == list(range(10))


def test_truncated_and_corrupt_idx_files_are_refused(tmp_path):
    make_mnist_like(tmp_path / "m", gz=False)
    f = tmp_path / "m" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated"):
        load_data(f"idx:{tmp_path / 'm'}")
    f.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(f)
    g = tmp_path / "cut.gz"
    g.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 50) + bytes(50))[:20])
    with pytest.raises(DataError, match="gzip"):
        read_idx(g)


def test_missing_paths_and_unknown_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_data(f"idx:{tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        load_data(f"idx:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="unknown data source 'digts'.*digits"):
        load_data("digts")
    with pytest.raises(DataError, match="needs a path"):
        load_data("idx")
    with pytest.raises(DataError, match="bad synthetic option"):
        load_data("synthetic:q=3")


def test_synthetic_mixture_lies_on_orthogonal_subspaces():
    mix = mixture_of_subspaces(k=3, d=20, rank=4, n=50, noise=0.0, seed=3)
    assert mix.x.shape == (150, 20)
    u = torch.cat(mix.bases, 1)
    assert torch.allclose(u.T @ u, torch.eye(12), atol=1e-5)
    for j, base in enumerate(mix.bases):
        xj = mix.x[mix.labels == j]
        assert torch.allclose(xj @ base @ base.T, xj, atol=1e-5)  # each class inside its subspace
    noisy = mixture_of_subspaces(k=3, d=20, rank=4, n=2000, noise=0.5, seed=3)
    residual = noisy.x - noisy.signal
    assert float(residual.pow(2).sum(1).mean()) == pytest.approx(0.25, rel=0.05)
    z, labels, bases, signal = token_sets(batch=4, tokens=16, k=3, d=20, rank=4, seed=1)
    assert z.shape == (4, 16, 20) and labels.shape == (4, 16)
    data = load_data("synthetic:k=3,d=20,rank=4,n=50,noise=0.05")
    assert data.x_train.shape == (120, 1, 1, 20) and data.num_classes == 3 and isinstance(data, ImageData)
    assert data.preprocessing() == {"mean": [0.0], "std": [1.0], "image_size": [1, 20], "channels": 1}
