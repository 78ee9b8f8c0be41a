"""Data formats from a user's path, each written here in its real format: CIFAR pickles, a PNG folder tree, npz."""
import os
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from srr.data import ImageData, load_data
from srr.data.cifar import CIFAR10_STATS
from srr.data.images import as_batch
from srr.errors import DataError, DataFileNotFoundError


def write_cifar10(folder, n_per_batch=6, seed=0):
    """The python-version layout: five data_batch_i and test_batch, protocol-2 pickles of bytes-keyed dicts."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        entry = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img{i}.png".encode() for i in range(n_per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        batches[name] = (data, labels)
    return batches


def test_cifar10_batches_round_trip(tmp_path):
    batches = write_cifar10(tmp_path / "cifar-10-batches-py")
    data = load_data(f"cifar10:{tmp_path}")  # the parent folder is found too
    assert len(data.train_set) == 30 and len(data.test_set) == 6 and data.num_classes == 10
    assert data.model_overrides() == {"image_size": 32, "channels": 3, "num_classes": 10}
    x, y = data.test_set.__getitems__([2, 4])
    raw = batches["test_batch"][0][[2, 4]].reshape(2, 3, 32, 32) / 255.0
    mean, std = (np.array(s).reshape(1, 3, 1, 1) for s in CIFAR10_STATS)
    assert np.allclose(x.numpy(), (raw - mean) / std, atol=1e-5)
    assert y.tolist() == [batches["test_batch"][1][2], batches["test_batch"][1][4]]
    assert data.train_set.x.dtype == torch.uint8  # held raw, standardised per batch
    assert isinstance(data, ImageData) and data.preprocessing()["mean"] == list(CIFAR10_STATS[0])


def test_cifar100_fine_and_coarse(tmp_path):
    rng = np.random.default_rng(1)
    for name, n in (("train", 8), ("test", 4)):
        entry = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"fine_labels": list(range(90, 90 + n)), b"coarse_labels": [19] * n}
        (tmp_path / name).write_bytes(pickle.dumps(entry, protocol=2))
    fine, coarse = load_data(f"cifar100:{tmp_path}"), load_data(f"cifar100:{tmp_path},coarse")
    assert fine.num_classes == 100 and fine.train_set.y.tolist() == list(range(90, 98))
    assert coarse.num_classes == 20 and set(coarse.test_set.y.tolist()) == {19}


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"refusing to load the global (posix|os)\.system"):
        load_data(f"cifar10:{tmp_path}")
    assert not (tmp_path / "pwned.txt").exists()


def test_cifar_truncated_and_missing(tmp_path):
    write_cifar10(tmp_path)
    f = tmp_path / "data_batch_3"
    f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_3: truncated or corrupt pickle"):
        load_data(f"cifar10:{tmp_path}")
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DataFileNotFoundError, match="lacks the cifar10 file"):
        load_data(f"cifar10:{tmp_path}")


def write_png_tree(root, classes=("cat", "dog", "eel"), per_class=(4, 2), size=(12, 10), mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(("train", "val"), per_class):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                a = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(a, mode).save(d / f"{i}.png")
                arrays[(split, c, i)] = a
    return arrays


def test_png_folder_tree(tmp_path):
    arrays = write_png_tree(tmp_path / "imgs")
    data = load_data(f"folder:{tmp_path / 'imgs'}")
    assert data.num_classes == 3 and len(data.train_set) == 12 and len(data.test_set) == 6
    assert data.image_size == (10, 10) and data.channels == 3  # shorter side, centre crop
    x, y = data.test_set.__getitems__(list(range(6)))
    assert y.tolist() == [0, 0, 1, 1, 2, 2] and x.shape == (6, 3, 10, 10)
    pixels = data.unnormalize(x[2:3])[0].permute(1, 2, 0).numpy() * 255  # dog/0.png, columns 1..10
    assert np.allclose(pixels, arrays[("val", "dog", 0)][:, 1:11], atol=1e-3)
    resized = load_data(f"folder:{tmp_path / 'imgs'},size=6")
    assert resized.image_size == (6, 6) and resized.train_set.__getitems__([0])[0].shape == (1, 3, 6, 6)


def test_greyscale_folder_without_split_and_bad_file(tmp_path):
    write_png_tree(tmp_path / "g", per_class=(5, 0), mode="L")
    flat = tmp_path / "flat"
    (tmp_path / "g" / "train").rename(flat)
    data = load_data(f"folder:{flat}")
    assert data.channels == 1 and len(data.train_set) + len(data.test_set) == 15 and len(data.test_set) == 3
    (flat / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="broken.png: cannot decode the image"):
        d = load_data(f"folder:{flat}")
        for s in (d.train_set, d.test_set):
            s.__getitems__(list(range(len(s))))


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 5, 7, 3), dtype=np.uint8)  # NHWC
    y = np.arange(20) % 4
    np.savez(tmp_path / "a.npz", x=x, y=y)
    data = load_data(f"npz:{tmp_path / 'a.npz'}")
    assert data.channels == 3 and data.image_size == (5, 7) and data.num_classes == 4
    assert len(data.train_set) == 16 and len(data.test_set) == 4
    xs, _ = data.train_set.__getitems__(list(range(16)))
    assert xs.mean(dim=(0, 2, 3)).abs().max() < 1e-5 and (xs.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    assert data.x_test.shape == (4, 3, 5, 7) and data.y_test.tolist() == data.test_set.y.tolist()  # for `analyze`
    np.savez(tmp_path / "b.npz", x_train=np.ones((6, 3, 4, 4), np.float32), y_train=np.zeros(6, np.int64),
             x_test=np.zeros((3, 3, 4, 4), np.float32), y_test=np.array([0, 1, 2]))
    b = load_data(f"npz:{tmp_path / 'b.npz'}")
    assert b.channels == 3 and b.image_size == (4, 4) and b.num_classes == 3 and len(b.test_set) == 3


def test_npz_refuses_objects_and_bad_shapes(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4, np.int64))
    with pytest.raises(DataError, match="without unpickling"):
        load_data(f"npz:{tmp_path / 'o.npz'}")
    np.savez(tmp_path / "s.npz", x=np.zeros((4, 5, 5, 5), np.uint8), y=np.zeros(4, np.int64))
    with pytest.raises(DataError, match="images must be"):
        load_data(f"npz:{tmp_path / 's.npz'}")
    (tmp_path / "t.npz").write_bytes((tmp_path / "s.npz").read_bytes()[:100])
    with pytest.raises(DataError, match="not a readable .npz"):
        load_data(f"npz:{tmp_path / 't.npz'}")


def test_worker_processes_give_the_same_batches(tmp_path):
    write_cifar10(tmp_path)
    data = load_data(f"cifar10:{tmp_path}")
    batches = [[3, 1, 4], [1, 5, 9, 2], [6]]
    alone = list(DataLoader(data.train_set, batch_sampler=batches, collate_fn=as_batch))
    workers = list(DataLoader(data.train_set, batch_sampler=batches, collate_fn=as_batch, num_workers=2))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(alone, workers))
