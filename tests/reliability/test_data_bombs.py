"""Data bombs (issue: bounded resources, no silent wrong answer): hostile files and options given to
``srr.data.load_data``, each in a child process under an address-space limit, are refused with one line — before
the memory they promise is allocated — or, for the cases marked ``None``, load within a few MiB.

Every case runs through :class:`bounded_runs.ForkServer` (one interpreter imports srr.data once; each case is a
forked child with ``RLIMIT_AS`` = its mapping + :data:`HEADROOM`). The child loads the spec and fetches the first
batch of each split; the test checks exit status 2, one stderr line matching the pattern, no traceback, no warning,
and that the child's peak resident memory stayed within :data:`MAX_EXTRA` of an idle child's. The peaks are printed
as a table at the end of the module.
"""
from __future__ import annotations

import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest
from bomb_files import (MiB, cifar_folder, gif_bytes, gzip_of, gzip_zeros, idx_bytes, idx_folder, idx_header,
                        image_folder, npy_header, npz_with, patch_declared_size, png_bytes, png_chunk, sparse_file,
                        tiff_bytes, zeros_member)
from bounded_runs import GiB, ForkServer, assert_refused, run_limited
from reliability_counts import tried

HEADROOM = 2 * GiB  # each child may map this much beyond what it had at the fork; every bomb below is larger
MAX_EXTRA = 160 * MiB  # resident memory a case may add to an idle child's

LOAD = """
import sys
from srr.data import load_data
from srr.errors import SrrError
try:
    data = load_data({spec!r})
    for ds in (data.train_set, data.test_set):
        ds.__getitems__(list(range(min(len(ds), 16))))
except SrrError as exc:
    print(f"srr: error: {{exc}}", file=sys.stderr)
    raise SystemExit(2)
print(data)
"""


# ---- file makers: each writes under ``root`` and returns the path that goes into the spec ----
def idx_gzip_bomb(root):  # 6.5 GiB of zeros behind a header that promises exactly that, 6.7 MB on disk
    images = gzip_zeros(6500, idx_header(0x08, (6500, 1024, 1024)))
    return idx_folder(root, images=images, labels=gzip_of(idx_bytes(np.zeros(6500, np.uint8))), gz=True)


def idx_gzip_lying_header(root):  # a 60-byte gzip promising 47 MB
    return idx_folder(root, images=gzip_of(idx_header(0x08, (60000, 28, 28)) + bytes(100)), gz=True,
                      labels=gzip_of(idx_bytes(np.zeros(60000, np.uint8))))


def idx_gzip_trailing_bomb(root):  # 10 images as promised, then 4 GiB of zeros after them
    images = gzip_zeros(4096, idx_bytes(np.zeros((10, 6, 6), np.uint8)))
    return idx_folder(root, images=images, labels=gzip_of(idx_bytes(np.zeros(10, np.uint8))), gz=True)


def idx_huge_dims(root):  # a raw header promising 4e9 x 65535 x 65535 bytes, and nothing else
    return idx_folder(root, images=idx_header(0x08, (4_000_000_000, 65535, 65535)))


def idx_sparse_huge(root):  # a raw file really holding the 10 GiB its header promises (sparse: no disk used)
    idx_folder(root, labels=idx_bytes(np.zeros(10240, np.uint8)))
    sparse_file(root / "t10k-images-idx3-ubyte", idx_header(0x08, (10240, 1024, 1024)), 16 + 10 * GiB)
    return root


def idx_many_dims(root):
    return idx_folder(root, images=bytes([0, 0, 8, 200]) + bytes(800))


def idx_label_2e9(root):
    return idx_folder(root, labels=idx_bytes(np.array([0, 1, 2, 2_000_000_000, 1, 0, 2, 1, 0, 1], np.int32)))


def idx_float_labels(root):
    return idx_folder(root, labels=idx_bytes(np.array([0, 1, np.nan, 2, 1, 0, 2, 1, 0, 1], np.float32)))


def idx_nan_pixel(root):
    x = np.random.default_rng(0).random((10, 6, 6)).astype(np.float32)
    x[3, 2, 1] = np.nan
    return idx_folder(root, images=idx_bytes(x))


def idx_zero_size(root):
    return idx_folder(root, images=idx_bytes(np.zeros((10, 0, 0), np.uint8)))


def idx_nested_gzip(root):
    return idx_folder(root, images=gzip_of(gzip_of(idx_bytes(np.zeros((10, 6, 6), np.uint8)))), gz=True,
                      labels=gzip_of(idx_bytes(np.zeros(10, np.uint8))))


def _npz(root, **arrays):
    root.mkdir(parents=True)
    return npz_with(root / "data.npz", arrays)


X8, Y8 = np.zeros((10, 6, 6), np.uint8), np.arange(10) % 3


def npz_deflate_bomb(root):  # x_train: 3.5 GiB of zeros in 3.6 MB, a real deflate stream
    root.mkdir(parents=True)
    member = zeros_member((3584, 1024, 1024), 3584)
    return npz_with(root / "data.npz", {"y_train": np.zeros(3584, np.int64), "x_test": X8, "y_test": Y8},
                    raw_members={"x_train": member})


def npz_huge_declared_shape(root):  # an .npy header declaring 3e12 bytes over 36 bytes of data
    root.mkdir(parents=True)
    data = npy_header((10**6, 3, 1000, 1000)) + bytes(36)
    stored = (data, zlib.crc32(data), len(data), zipfile.ZIP_STORED)
    return npz_with(root / "data.npz", {"y": Y8}, raw_members={"x": stored})


def npz_size_lie(root):  # the zip directory claims 4 GB for a member of a few hundred compressed bytes
    root.mkdir(parents=True)
    path = npz_with(root / "data.npz", {"x": X8, "y": Y8}, compression=zipfile.ZIP_DEFLATED)
    return patch_declared_size(path, "x.npy", 0xFFFFFFF0)


def npz_bzip2(root):
    root.mkdir(parents=True)
    return npz_with(root / "data.npz", {"x": X8, "y": Y8}, compression=zipfile.ZIP_BZIP2)


def npz_scalar_x(root):
    return _npz(root, x_train=np.array(5), y_train=Y8, x_test=X8, y_test=Y8)


def npz_nan_pixel(root):
    x = np.random.default_rng(0).random((10, 6, 6))
    x[4, 0, 0] = np.nan
    return _npz(root, x=x.astype(np.float32), y=Y8)


def npz_inf_test_pixels(root):
    x = np.random.default_rng(0).random((10, 6, 6))
    x[:3, 1, 1] = np.inf
    return _npz(root, x_train=x[3:] * 0, y_train=Y8[3:], x_test=x[:3], y_test=Y8[:3])


def npz_nan_labels(root):
    return _npz(root, x=X8, y=np.where(Y8 == 1, np.nan, Y8))


def npz_label_2e9(root):
    return _npz(root, x=X8, y=np.where(np.arange(10) == 4, 2_000_000_000, Y8))


def npz_zero_size(root):
    return _npz(root, x=np.zeros((10, 0, 0), np.uint8), y=Y8)


def png_bomb(root):  # 20000 x 20000 one-bit pixels (400 MP), all rows present, ~60 KB
    return image_folder(root, png_bytes(20000, 20000))


def png_warning_range(root):  # 10000 x 10000 (100 MP): above Pillow's warning limit, below its error limit
    return image_folder(root, png_bytes(10000, 10000))


def png_text_bomb(root):  # an 8 x 8 PNG with a zTXt chunk inflating to 64 MiB
    ztxt = png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(bytes(64 * MiB), 9))
    return image_folder(root, png_bytes(8, 8, 8, 2, extra=ztxt))


def tiff_bomb(root):
    return image_folder(root, tiff_bytes(30000, 30000), "0.tif")


def gif_bomb(root):
    return image_folder(root, gif_bytes(65535, 65535), "0.gif")


def thin_strip(root):  # 1 x 65000: resized before cropping it would have become 224 x 14.6 million pixels
    return image_folder(root, png_bytes(1, 65000, 8, 2))


def small_pngs(root):
    return image_folder(root)


def _cifar(poison: bytes):
    return lambda root: cifar_folder(root, poison)


P2 = b"\x80\x02"
CIFAR_BATCH_START = P2 + b"}q\x00(U\x04dataq\x01"  # {b"data": ...


def _big_labels_pickle() -> bytes:
    big = b"x" * MiB  # 3000 references to one 1 MiB string: np.asarray would make a 3 GiB array of them
    return pickle.dumps({b"data": np.zeros((3000, 3072), np.uint8), b"labels": [big] * 3000}, protocol=2)


CASES = [
    # IDX: streamed, header first, promise checked before allocating
    ("idx-gzip-bomb-6.5GiB", idx_gzip_bomb, "idx:{path}", r"IDX data of shape \(6500, 1024, 1024\) needs about 6\.3 "
     r"GiB, more than the .* this machine can give"),
    ("idx-gzip-lying-header", idx_gzip_lying_header, "idx:{path}", r"promises 47,040,000 bytes .*more than \d+ "
     r"compressed bytes can hold"),
    ("idx-gzip-trailing-4GiB", idx_gzip_trailing_bomb, "idx:{path}", r"truncated or padded IDX data: header promises "
     r"360 bytes for shape \(10, 6, 6\), found at least 361 \(trailing data\)"),
    ("idx-huge-dims-tiny-file", idx_huge_dims, "idx:{path}", r"header promises [\d,]+ bytes for shape "
     r"\(4000000000, 65535, 65535\), found 0"),
    ("idx-sparse-10GiB", idx_sparse_huge, "idx:{path}", r"IDX data of shape \(10240, 1024, 1024\) needs about 10\.0 "
     r"GiB"),
    ("idx-200-dims", idx_many_dims, "idx:{path}", r"declares 200 dimensions \(at most 8\)"),
    ("idx-label-2e9", idx_label_2e9, "idx:{path}", r"label 2000000000 implies 2,000,000,001 classes for 10 samples"),
    ("idx-float-labels", idx_float_labels, "idx:{path}", r"t10k labels must be integers, found float32"),
    ("idx-nan-pixel", idx_nan_pixel, "idx:{path}", r"(train|test) images: 1 non-finite pixel value"),
    ("idx-zero-size-images", idx_zero_size, "idx:{path}", r"zero-sized images of shape C x H x W = 1 x 0 x 0"),
    ("idx-nested-gzip", idx_nested_gzip, "idx:{path}", r"not an IDX file \(bad magic number\)"),
    # npz: zip directory and .npy headers inspected before any array is read
    ("npz-deflate-bomb-3.5GiB", npz_deflate_bomb, "npz:{path}", r"arrays x_train, y_train, x_test, y_test needs "
     r"about 3\.5 GiB, more than the .* this machine can give"),
    ("npz-huge-declared-shape", npz_huge_declared_shape, "npz:{path}", r"array 'x' declares shape "
     r"\(1000000, 3, 1000, 1000\) of uint8 \(3,000,000,000,000 bytes\) but its member holds 36"),
    ("npz-zip-size-lie-4GB", npz_size_lie, "npz:{path}", r"array 'x' promises 4,294,967,280 bytes .*more than \d+ "
     r"compressed bytes can hold"),
    ("npz-bzip2-member", npz_bzip2, "npz:{path}", r"compressed with zip method 12; only stored or deflate"),
    ("npz-0d-x_train", npz_scalar_x, "npz:{path}", r"images must be \(n, H, W\).*array 'x_train' has shape \(\)"),
    ("npz-nan-pixel", npz_nan_pixel, "npz:{path}", r"images 'x': 1 non-finite pixel value"),
    ("npz-inf-test-pixels", npz_inf_test_pixels, "npz:{path}", r"images 'x_test': 3 non-finite pixel value"),
    ("npz-nan-labels", npz_nan_labels, "npz:{path}", r"data.npz \('y'\): labels must be integers, found float64"),
    ("npz-label-2e9", npz_label_2e9, "npz:{path}", r"label 2000000000 implies 2,000,000,001 classes for 10 samples"),
    ("npz-zero-size-images", npz_zero_size, "npz:{path}", r"zero-sized images of shape C x H x W = 1 x 0 x 0"),
    # image files: declared size checked before decoding; a batch's memory checked before decoding it
    ("png-bomb-400MP", png_bomb, "folder:{path}", r"0.png: refusing to decode an image of 400,000,000 pixels, "
     r"more than 89,478,485"),
    ("png-100MP-warning-range", png_warning_range, "folder:{path}", r"0.png: refusing to decode an image of "
     r"100,000,000 pixels"),
    ("png-ztxt-64MiB", png_text_bomb, "folder:{path}", r"0.png: cannot decode the image \(.*(too large|Too Large)"),
    ("tiff-bomb-900MP", tiff_bomb, "folder:{path}", r"0.tif: refusing to decode an image of 900,000,000 pixels"),
    ("gif-bomb-4.3GP", gif_bomb, "folder:{path}", r"0.gif: refusing to decode an image of 4,294,836,225 pixels"),
    ("folder-size-16000", small_pngs, "folder:{path},size=16000", r"a batch of \d+ image\(s\) of 3 x 16000 x 16000 "
     r"\(folder option size=16000\) needs about"),
    ("folder-size-100000", small_pngs, "folder:{path},size=100000", r"folder option size must lie in \[1, 65536\], got 100000"),
    ("png-thin-strip-size-224", thin_strip, "folder:{path},size=224", None),
    # CIFAR pickles: opcodes scanned, globals narrowed, labels checked
    ("cifar-memo-index-2**28", _cifar(P2 + b"Nr" + struct.pack("<I", 2**28) + b"."), "cifar10:{path}",
     r"data_batch_1: truncated or corrupt pickle \(memo index 268,435,456"),
    ("cifar-binbytes8-1TiB", _cifar(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc."), "cifar10:{path}",
     r"data_batch_1: truncated or corrupt pickle \(expected 1099511627776 bytes"),
    ("cifar-frame-1TiB", _cifar(b"\x80\x04\x95" + struct.pack("<Q", 2**40) + b"N."), "cifar10:{path}",
     r"data_batch_1: truncated or corrupt pickle \(a frame of 1,099,511,627,776 bytes"),
    ("cifar-bytes-4GB", _cifar(CIFAR_BATCH_START + b"c__builtin__\nbytes\n\x8a\x05\x00\x28\x6b\xee\x00\x85R."),
     "cifar10:{path}", r"not a plain CIFAR batch \(refusing bytes\(\) with arguments"),
    ("cifar-hex-codec-2**33", _cifar(P2 + b"c_codecs\nencode\n" * 33 + b"X\x01\x00\x00\x00aX\x06\x00\x00\x00latin1"
                                     + b"\x86R" + b"X\x03\x00\x00\x00hex\x86R" * 32 + b"."), "cifar10:{path}",
     r"not a plain CIFAR batch \(refusing _codecs.encode with the codec 'hex'\)"),
    ("cifar-reconstruct-10GB", _cifar(P2 + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
                                      b"J\x00\xe4\x0bT\x85U\x01B\x87R."), "cifar10:{path}",
     r"refusing to build an array of .*ndarray.* with the declared shape \(1410065408,\)"),
    ("cifar-labels-3000x1MiB", _cifar(_big_labels_pickle()), "cifar10:{path}",
     r"data_batch_1: labels must be integers, found bytes"),
    ("cifar-label-2e9", _cifar(pickle.dumps({b"data": np.zeros((4, 3072), np.uint8),
                                             b"labels": [0, 1, 2_000_000_000, 3]}, 2)), "cifar10:{path}",
     r"label 2000000000 is out of range for 10 classes"),
    ("cifar-sparse-10GiB", lambda root: sparse_file(cifar_folder(root) / "test_batch", b"\x80\x02", 10 * GiB).parent,
     "cifar10:{path}", r"test_batch: reading a CIFAR batch of 10,737,418,240 bytes needs about 30\.0 GiB"),
    # options: checked where parsed, sizes checked before allocating
    ("synthetic-k-n-d", None, "synthetic:k=65536,n=1000000,d=4096", r"65536 x 1000000 samples of dimension 4096 "
     r"needs about"),
    ("synthetic-noise-nan", None, "synthetic:noise=nan", r"synthetic option noise must be a finite number, got nan"),
    ("synthetic-n-negative", None, "synthetic:n=-1", r"synthetic option n must lie in \[1, 1073741824\], got -1"),
]

_PEAKS: list[tuple[str, float, str]] = []


@pytest.fixture(scope="module")
def server(request):
    with ForkServer(preload=("srr.data", "PIL.Image", "PIL.PngImagePlugin", "PIL.TiffImagePlugin",
                             "PIL.GifImagePlugin", "sklearn.datasets")) as srv:
        idle = srv.run("pass", HEADROOM)
        assert idle.returncode == 0, idle.stderr
        srv.idle_peak = idle.peak
        yield srv
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None or not _PEAKS:
        return
    with capture.global_and_fixture_disabled():  # printed past pytest's capture, so the numbers can be quoted
        reporter.write_line(f"\ndata bombs: peak resident memory of each child (an idle child: "
                            f"{srv.idle_peak / MiB:.0f} MiB; address-space limit: its mapping + "
                            f"{HEADROOM / GiB:.0f} GiB)")
        for case, peak, line in _PEAKS:
            reporter.write_line(f"  {case:26s} {peak:5.0f} MiB  {line}")


@pytest.mark.parametrize("case,maker,spec,pattern", CASES, ids=[c[0] for c in CASES])
def test_bomb_is_refused_in_bounded_memory(case, maker, spec, pattern, server, tmp_path):
    path = maker(tmp_path / "case") if maker is not None else None
    outcome = server.run(LOAD.format(spec=spec.format(path=path)), HEADROOM, timeout=60)
    tried("data_bomb_cases")
    if pattern is None:
        assert outcome.returncode == 0 and not outcome.stderr, outcome.stderr
        line = outcome.stdout.strip().splitlines()[-1]
    else:
        line = assert_refused(outcome, pattern)
    _PEAKS.append((case, outcome.peak / MiB, line.replace(str(tmp_path / "case"), "…")[:160]))
    assert outcome.peak - server.idle_peak < MAX_EXTRA, f"peak {outcome.peak / MiB:.0f} MiB"


def test_the_limit_holds_and_the_peak_is_the_childs_own(server):
    grown = server.run("x = b'\\x01' * (300 << 20)", HEADROOM)  # 300 MiB touched
    assert grown.returncode == 0 and grown.peak - server.idle_peak > 290 * MiB
    assert server.run("pass", HEADROOM).peak - server.idle_peak < 16 * MiB  # per child, not the maximum so far
    over = server.run(f"x = b'\\x01' * {HEADROOM + (64 << 20)}", HEADROOM)
    assert over.returncode == 1 and "MemoryError" in over.stderr and over.peak - server.idle_peak < 64 * MiB


def test_a_fresh_interpreter_under_the_same_limit(tmp_path):
    """run_limited: a new process per case (as CLI tables use), RLIMIT_AS set in preexec_fn."""
    spec = f"idx:{idx_gzip_bomb(tmp_path / 'case')}"
    outcome = run_limited(["-c", LOAD.format(spec=spec)], HEADROOM, timeout=120)
    tried("data_bomb_cases")
    assert_refused(outcome, r"IDX data of shape \(6500, 1024, 1024\) needs about 6\.3 GiB")
    assert outcome.peak < 1 * GiB and outcome.limit > HEADROOM
