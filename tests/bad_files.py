"""Broken inputs for the bad-input and untrusted-file tests, each written in its real format and then damaged.

:func:`make_files` writes them all under one folder and returns ``{name: path}`` for the case table of
``test_bad_input.py`` (paths are formatted into command lines as ``{name}``).
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np

MARKER = "srr-untrusted-code-ran"  # the file a malicious pickle would create


class Evil:
    """Unpickling this runs ``os.system`` (creating ``path``) — what an untrusted file can do to a plain unpickler."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def evil_pickle(marker: Path, protocol: int = 2) -> bytes:
    """A pickle that creates ``marker`` when loaded by ``pickle.load`` (checked in the test itself)."""
    return pickle.dumps({b"data": Evil(marker), b"labels": [0]}, protocol=protocol)


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file: magic 0 0 CODE NDIM, big-endian dimensions, then the data."""
    dtype = {0x08: np.uint8, 0x09: np.int8}[code]
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + \
        np.ascontiguousarray(array, dtype=dtype).tobytes()


def write_idx(folder: Path, x: np.ndarray, y: np.ndarray, prefix: str = "t10k", gz: bool = False,
              y_code: int = 0x08) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for what, data, code in (("images-idx3", x, 0x08), ("labels-idx1", y, y_code)):
        raw = idx_bytes(data, code)
        path = folder / f"{prefix}-{what}-ubyte{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(raw) if gz else raw)
        paths.append(path)
    return paths[0], paths[1]


def _idx_cases(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), rng.integers(0, 10, 20).astype(np.uint8)
    out = {}

    def case(name, damage=None, gz=False, **kw):
        folder = root / name
        images, labels = write_idx(folder, kw.pop("x", x), kw.pop("y", y), gz=gz, **kw)
        if damage:
            damage(images, labels)
        out[name] = folder

    case("idx_truncated", lambda i, _: i.write_bytes(i.read_bytes()[:-50]))
    case("idx_padded", lambda i, _: i.write_bytes(i.read_bytes() + b"\0" * 7))
    case("idx_header", lambda i, _: i.write_bytes(i.read_bytes()[:9]))
    case("idx_magic", lambda i, _: i.write_bytes(b"\x50\x4b" + i.read_bytes()[2:]))
    case("idx_gz_truncated", lambda i, _: i.write_bytes(i.read_bytes()[: len(i.read_bytes()) // 2]), gz=True)
    case("idx_gz_corrupt", lambda i, _: i.write_bytes(_flip_middle(i.read_bytes())), gz=True)
    case("idx_count_mismatch", y=y[:15])
    case("idx_no_labels", lambda _, lab: lab.unlink())
    case("idx_empty", x=x[:0], y=y[:0])
    case("idx_negative_labels", y=np.where(np.arange(20) == 3, -1, y % 10).astype(np.int8), y_code=0x09)
    case("idx_labels_2d", lambda _, lab: lab.write_bytes(idx_bytes(y.reshape(4, 5))))
    (root / "idx_none").mkdir()
    out["idx_none"] = root / "idx_none"
    return out


def _flip_middle(raw: bytes) -> bytes:
    """Damage the deflate stream (the gzip header and length stay intact): CRC or stream errors on reading."""
    mid = len(raw) // 2
    return raw[:mid] + bytes(b ^ 0xFF for b in raw[mid:mid + 16]) + raw[mid + 16:]


def _model_cases(root: Path) -> dict[str, Path]:
    import srr

    small = dict(dim=16, depth=1, heads=2, image_size=8, channels=1, num_classes=10)
    good = srr.create_model("crate_nano", **small).save_pretrained(root / "model_ok")
    out = {"model_ok": good}

    def variant(name, weights_from=None, config=None):
        folder = root / name
        shutil.copytree(good, folder)
        if weights_from is not None:
            shutil.copy(weights_from / "model.safetensors", folder / "model.safetensors")
        if config is not None:
            (folder / "config.json").write_text(config)
        out[name] = folder
        return folder

    vit = srr.create_model("vit_nano" if "vit_nano" in srr.list_models() else "vit_tiny", **small)
    variant("model_other_arch", vit.save_pretrained(root / "vit_weights"))
    variant("model_shapes", srr.create_model("crate_nano", **{**small, "dim": 32}).save_pretrained(root / "wide"))
    trunc = variant("model_truncated")
    raw = (trunc / "model.safetensors").read_bytes()
    (trunc / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    garbage = variant("model_garbage")
    (garbage / "model.safetensors").write_bytes(b"\xff" * 64)
    variant("model_bad_json", config="{not json")
    cfg = json.loads((good / "config.json").read_text())
    variant("model_unknown_arch", config=json.dumps({**cfg, "model": "crate_gigantic"}))
    variant("model_bad_args", config=json.dumps({**cfg, "args": {**cfg["args"], "depthh": 3}}))
    variant("model_not_a_dict", config="[1, 2, 3]")
    (variant("model_no_weights") / "model.safetensors").unlink()
    return out


def _text_cases(root: Path) -> dict[str, Path]:
    """Text: every byte sequence is valid input (read as bytes), so only empty, too short or not-a-file fail."""
    import srr

    root.mkdir(parents=True, exist_ok=True)
    out = {"text_ok": root / "ok.txt", "text_empty": root / "empty.txt", "text_short": root / "short.txt",
           "text_folder": root}
    out["text_ok"].write_text("to be, or not to be\n" * 40)
    out["text_empty"].write_bytes(b"")
    out["text_short"].write_bytes(b"abc")
    out["lm_ok"] = srr.create_model("crate_gpt_nano", dim=32, depth=1, heads=2).save_pretrained(root / "lm")
    return out


def make_files(root: Path) -> dict[str, Path]:
    """Every broken input, by name; also ``file`` (a regular file) and ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "file").write_text("a regular file, not a folder\n")
    return {"root": root, "file": root / "file", **_idx_cases(root / "idx"), **_model_cases(root / "models"),
            **_text_cases(root / "text")}
