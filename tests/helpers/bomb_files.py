"""Hostile data files, written in their real formats, small on disk and huge (or poisoned) once read.

Compressed bombs are real: their deflate streams do inflate to what they declare (gigabytes of zeros), built from
one repeated deflate block so that writing a 6.5 GB bomb costs a few megabytes and milliseconds; their CRCs are
computed for the whole inflated payload (:func:`crc32_zeros`), so only their size is hostile.
"""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

MiB = 1 << 20


# ---- deflate streams of many zeros ----
def _gf2_times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def crc32_zeros(crc: int, n: int) -> int:
    """``zlib.crc32(bytes(n), crc)`` in O(log n): the CRC register advanced over n zero bytes (GF(2) matrix powers,
    as in zlib's crc32_combine)."""
    op = [0xEDB88320] + [1 << i for i in range(31)]  # one zero bit
    for _ in range(3):  # one zero byte
        op = [_gf2_times(op, op[i]) for i in range(32)]
    reg = crc ^ 0xFFFFFFFF
    while n:
        if n & 1:
            reg = _gf2_times(op, reg)
        op = [_gf2_times(op, op[i]) for i in range(32)]
        n >>= 1
    return reg ^ 0xFFFFFFFF


def deflate_zeros(n_mib: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """A raw deflate stream of ``prefix + n_mib MiB of zeros + suffix``."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.compress(bytes(MiB)) + c.flush(zlib.Z_SYNC_FLUSH)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_SYNC_FLUSH)  # one MiB of zeros after a window of zeros
    assert block == c.compress(bytes(MiB)) + c.flush(zlib.Z_SYNC_FLUSH)
    tail = c.compress(suffix) + c.flush()
    return head + block * (n_mib - 1) + tail


def gzip_zeros(n_mib: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """A gzip file of ``prefix + n_mib MiB of zeros + suffix`` (valid CRC and length)."""
    crc = zlib.crc32(suffix, crc32_zeros(zlib.crc32(prefix), n_mib * MiB))
    size = len(prefix) + n_mib * MiB + len(suffix)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflate_zeros(n_mib, prefix, suffix)
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


# ---- IDX ----
def idx_header(code: int, dims) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int32): 0x0C,
             np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
    return idx_header(codes[array.dtype], array.shape) + array.astype(array.dtype.newbyteorder(">")).tobytes()


def idx_folder(root: Path, images: bytes | None = None, labels: bytes | None = None, n: int = 10,
               gz: bool = False) -> Path:
    """A folder with one t10k pair (split 80 / 20 on loading); ``images``/``labels`` replace the good files."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    good_x = idx_bytes(rng.integers(0, 256, (n, 6, 6), dtype=np.uint8))
    good_y = idx_bytes((np.arange(n) % 3).astype(np.uint8))
    ext = ".gz" if gz else ""
    (root / f"t10k-images-idx3-ubyte{ext}").write_bytes(images if images is not None else good_x)
    (root / f"t10k-labels-idx1-ubyte{ext}").write_bytes(labels if labels is not None else good_y)
    return root


# ---- npz ----
def npy_header(shape, dtype: str = "|u1") -> bytes:
    """A version 1.0 ``.npy`` header for ``shape`` and ``dtype``, padded as numpy pads it."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    text += " " * (64 - (10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


def npz_with(path: Path, arrays: dict, raw_members: dict[str, tuple[bytes, int, int, int]] | None = None,
             compression: int = zipfile.ZIP_STORED) -> Path:
    """An npz of ``arrays`` (written by numpy), plus ``raw_members``: ``{name: (deflate bytes, crc, size, method)}``
    written as they are (a member numpy would never write)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=False) as fp:
                np.lib.format.write_array(fp, np.asanyarray(array), allow_pickle=False)
    raw = _append_raw_members(buffer.getvalue(), raw_members or {})
    path.write_bytes(raw)
    return path


def _append_raw_members(archive: bytes, members: dict) -> bytes:
    """Rebuild ``archive`` with extra members whose compressed bytes and declared sizes are given."""
    if not members:
        return archive
    src = zipfile.ZipFile(io.BytesIO(archive))
    out, central = io.BytesIO(), io.BytesIO()
    entries = [(i.filename, src.open(i).read(), None) for i in src.infolist()]
    entries += [(f"{name}.npy", None, spec) for name, spec in members.items()]
    count = 0
    for name, plain, spec in entries:
        fname = name.encode()
        if spec is None:
            data, crc, size, method = plain, zlib.crc32(plain), len(plain), 0
        else:
            data, crc, size, method = spec
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data),
                              size & 0xFFFFFFFF, len(fname), 0) + fname + data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data),
                                  size & 0xFFFFFFFF, len(fname), 0, 0, 0, 0, 0, offset) + fname)
        count += 1
    cd = central.getvalue()
    start = out.tell()
    out.write(cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(cd), start, 0))
    return out.getvalue()


def zeros_member(shape, n_mib: int, dtype: str = "|u1") -> tuple[bytes, int, int, int]:
    """A deflate ``.npy`` member: the header of ``shape`` then ``n_mib`` MiB of zeros (a real bomb when they agree)."""
    header = npy_header(shape, dtype)
    crc = crc32_zeros(zlib.crc32(header), n_mib * MiB)
    return deflate_zeros(n_mib, header), crc, len(header) + n_mib * MiB, zipfile.ZIP_DEFLATED


def patch_declared_size(path: Path, member: str, size: int) -> Path:
    """Make the central directory declare ``size`` uncompressed bytes for ``member`` (the data stays as it is)."""
    raw = bytearray(path.read_bytes())
    name = member.encode()
    at = raw.find(b"PK\x01\x02")
    while at != -1:
        n = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46:at + 46 + n] == name:
            struct.pack_into("<I", raw, at + 24, size)
            break
        at = raw.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(raw))
    return path


# ---- images ----
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, bit_depth: int = 1, colour: int = 0, extra: bytes = b"") -> bytes:
    """A real PNG of zeros (all its rows present, deflated)."""
    row = 1 + (width * bit_depth * (3 if colour == 2 else 1) + 7) // 8
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra
            + png_chunk(b"IDAT", zlib.compress(bytes(row * height), 9)) + png_chunk(b"IEND", b""))


def tiff_bytes(width: int, height: int) -> bytes:
    """A little-endian greyscale TIFF header declaring ``width × height`` with one tiny strip."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0),
               (277, 3, 1), (278, 4, height), (279, 4, 16)]
    ifd_size = 2 + 12 * len(entries) + 4
    data_at = 8 + ifd_size
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = data_at if tag == 273 else value
        ifd += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else
                                                    struct.pack("<I", value))
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00" + bytes(16)


def gif_bytes(width: int, height: int) -> bytes:
    """A GIF whose screen and single frame declare ``width × height``, with a two-colour table and tiny data."""
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00" + b"\x3b")


def image_folder(root: Path, bomb: bytes | None = None, bomb_name: str = "0.png", n: int = 5) -> Path:
    """``root/a/*.png`` and ``root/b/*.png`` (8 × 8 RGB), with ``bomb`` written as ``a/{bomb_name}``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / c / f"{i + 1}.png")
    if bomb is not None:
        (root / "a" / bomb_name).write_bytes(bomb)
    return root


# ---- CIFAR pickles ----
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_folder(root: Path, poison: bytes | None = None, poisoned: str = "data_batch_1", n: int = 4) -> Path:
    """A CIFAR-10 python-version folder of small valid batches, ``poisoned`` replaced by ``poison``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in CIFAR10_FILES:
        entry = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]}
        (root / name).write_bytes(pickle.dumps(entry, protocol=2))
    if poison is not None:
        (root / poisoned).write_bytes(poison)
    return root


def sparse_file(path: Path, head: bytes, size: int) -> Path:
    """A file of ``size`` bytes that starts with ``head`` and holds zeros after it, without using the disk."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def gzip_of(data: bytes) -> bytes:
    return gzip.compress(data, 6)
