"""The readers of untrusted files, in process: what they accept exactly, and what they refuse before reading on.

(The same refusals under an address-space limit, with peak memory, are in tests/reliability/test_data_bombs.py.)
"""
import gzip
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch
from bomb_files import gzip_zeros, idx_bytes, idx_folder, npz_with, png_bytes, zeros_member

from srr.data import load_data, read_idx
from srr.data.safe_pickle import safe_unpickle, scan_pickle
from srr.errors import DataError


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.float32, np.float64])
def test_read_idx_returns_native_arrays_of_every_dtype(tmp_path, dtype):
    a = (np.arange(60).reshape(5, 3, 4) - 20).astype(dtype)
    for gz in (False, True):
        path = tmp_path / f"a{gz}"
        path.write_bytes(gzip.compress(idx_bytes(a)) if gz else idx_bytes(a))
        out = read_idx(path)
        assert out.dtype == a.dtype and out.dtype.isnative and out.flags.writeable and np.array_equal(out, a)


def test_read_idx_names_both_sizes_and_stops_at_the_promise(tmp_path):
    raw = idx_bytes(np.zeros((10, 6, 6), np.uint8))
    (tmp_path / "padded").write_bytes(raw + b"1234567")
    with pytest.raises(DataError, match=r"header promises 360 bytes for shape \(10, 6, 6\), found 367$"):
        read_idx(tmp_path / "padded")
    (tmp_path / "short").write_bytes(raw[:-60])
    with pytest.raises(DataError, match=r"header promises 360 bytes for shape \(10, 6, 6\), found 300$"):
        read_idx(tmp_path / "short")
    (tmp_path / "short.gz").write_bytes(gzip.compress(raw[:-60]))
    with pytest.raises(DataError, match=r"header promises 360 bytes for shape \(10, 6, 6\), found 300$"):
        read_idx(tmp_path / "short.gz")
    (tmp_path / "long.gz").write_bytes(gzip_zeros(64, raw))  # 64 MiB after the promised bytes: read 1 of them
    with pytest.raises(DataError, match=r"360 bytes for shape \(10, 6, 6\), found at least 361 \(trailing data\)$"):
        read_idx(tmp_path / "long.gz")
    bad_crc = bytearray(gzip.compress(raw))
    bad_crc[-8] ^= 0xFF
    (tmp_path / "crc.gz").write_bytes(bytes(bad_crc))
    with pytest.raises(DataError, match=r"crc.gz: corrupt or truncated gzip stream \(CRC check failed"):
        read_idx(tmp_path / "crc.gz")  # the promised bytes are all there: the trailer is still checked


def test_idx_labels_beyond_uint8_and_the_class_count(tmp_path):
    folder = idx_folder(tmp_path / "m", labels=idx_bytes(np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 11], np.int32)))
    data = load_data(f"idx:{folder}")
    assert data.num_classes == 12 and sorted(data.y_train.tolist() + data.y_test.tolist()) == list(range(9)) + [11]
    assert data.train_set.x.dtype == torch.uint8  # held raw, standardised per batch


def test_npz_reads_only_the_arrays_it_needs(tmp_path):
    x, y = np.random.default_rng(0).integers(0, 256, (10, 6, 6), dtype=np.uint8), np.arange(10) % 2
    # an object array (never unpickled) and a 1 GiB bomb (never inflated) ride along unread
    path = npz_with(tmp_path / "d.npz", {"x": x, "y": y}, raw_members={"junk": zeros_member((1024, 1 << 20), 1024)})
    with zipfile.ZipFile(path, "a") as zf:
        with zf.open("meta.npy", "w") as fp:
            np.lib.format.write_array(fp, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    data = load_data(f"npz:{path}")
    assert data.num_classes == 2 and len(data.train_set) == 8 and data.image_size == (6, 6)


def test_npz_fortran_order_and_channels_last_give_the_same_batches(tmp_path):
    x = np.random.default_rng(1).random((10, 3, 6, 5)).astype(np.float32)
    y = np.arange(10) % 2
    np.savez(tmp_path / "c.npz", x=x, y=y)
    np.savez(tmp_path / "f.npz", x=np.asfortranarray(x), y=y)
    np.savez(tmp_path / "l.npz", x=np.ascontiguousarray(x.transpose(0, 2, 3, 1)), y=y)
    a, f, last = (load_data(f"npz:{tmp_path / n}.npz") for n in "cfl")
    for other in (f, last):
        assert other.mean == pytest.approx(a.mean) and torch.allclose(other.x_test, a.x_test, atol=1e-6)


def test_folder_crops_before_resizing(tmp_path):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.fromarray(np.full((6, 2), 10 * i + (c == "b"), np.uint8), "L").save(tmp_path / c / f"{i}.png")
    strip = np.arange(12, dtype=np.uint8).reshape(6, 2) * 20  # 2 wide, 6 high: the centred square is rows 2-3
    Image.fromarray(strip, "L").save(tmp_path / "a" / "0.png")
    data = load_data(f"folder:{tmp_path}")
    assert data.image_size == (2, 2) and data.channels == 1
    ds = data.train_set if tmp_path / "a" / "0.png" in data.train_set.files else data.test_set
    i = ds.files.index(tmp_path / "a" / "0.png")
    assert ds.raw([i])[0, 0].tolist() == strip[2:4].tolist()


def test_decompression_bomb_is_one_error_and_no_warning(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "big.png").write_bytes(png_bytes(10000, 10000))  # Pillow warns (not raises) at this size
    for i in range(4):
        (tmp_path / "b" / f"{i}.png").write_bytes(png_bytes(4, 4))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match=r"big.png: refusing to decode an image of 100,000,000 pixels"):
            data = load_data(f"folder:{tmp_path}")
            data.test_set.__getitems__(list(range(len(data.test_set))))
    assert not seen, [str(w.message) for w in seen]


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_safe_unpickle_reads_plain_numpy_pickles_of_every_protocol(tmp_path, protocol):
    entry = {b"data": np.arange(3072 * 2, dtype=np.uint8).reshape(2, 3072) % 251, b"labels": [3, 7],
             b"empty": np.zeros((0, 4), np.uint8), b"names": [f"n{i}" for i in range(3000)]}  # 3000 memo entries
    (tmp_path / "b").write_bytes(pickle.dumps(entry, protocol=protocol))
    out = safe_unpickle(tmp_path / "b")
    assert np.array_equal(out["data"], entry[b"data"]) and out["labels"] == [3, 7] and out["empty"].shape == (0, 4)
    assert len(out["names"]) == 3000


def test_scan_pickle_refuses_lengths_beyond_the_file():
    scan_pickle(pickle.dumps({"a": b"x" * 1000}, protocol=4), "ok")
    with pytest.raises(DataError, match=r"p: truncated or corrupt pickle \(expected 1000 bytes"):
        scan_pickle(pickle.dumps(b"x" * 1000, protocol=3)[:-20], "p")
