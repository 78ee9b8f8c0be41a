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


def _write_cifar10(folder: Path, n: int = 6, label_max: int = 10) -> Path:
    """The python-version layout: five data_batch_i and test_batch, protocol-2 pickles of bytes-keyed dicts."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {b"labels": [int(v) for v in rng.integers(0, label_max, n)],
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    return folder


def _cifar_cases(root: Path) -> dict[str, Path]:
    out = {}
    trunc = out["cifar_truncated"] = _write_cifar10(root / "truncated")
    (trunc / "test_batch").write_bytes((trunc / "test_batch").read_bytes()[:500])
    (_write_cifar10(root / "garbage") / "data_batch_3").write_bytes(b"\0garbage" * 10)
    (_write_cifar10(root / "list") / "test_batch").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    bad_shape = {b"labels": [0, 1], b"data": np.zeros((2, 100), np.uint8)}
    (_write_cifar10(root / "shape") / "test_batch").write_bytes(pickle.dumps(bad_shape, protocol=2))
    (_write_cifar10(root / "missing") / "data_batch_4").unlink()
    _write_cifar10(root / "labels", label_max=12)
    _write_cifar10(root / "empty", n=0)
    out.update({f"cifar_{n}": root / n for n in ("garbage", "list", "shape", "missing", "labels", "empty")})
    return out


def _folder_cases(root: Path) -> dict[str, Path]:
    from PIL import Image

    rng = np.random.default_rng(2)

    def tree(folder, classes=("a", "b"), n=5):
        for c in classes:
            (folder / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / c / f"{i}.png")
        return folder

    broken = tree(root / "broken_png") / "b" / "3.png"
    broken.write_bytes(broken.read_bytes()[:40])  # the PNG signature and part of IHDR: a truncated PNG
    (tree(root / "not_png") / "a" / "1.png").write_text("not an image")
    (root / "empty" / "a").mkdir(parents=True)
    (root / "empty" / "b").mkdir()
    tree(root / "split" / "train")
    tree(root / "split" / "val", classes=("a", "c"))
    return {f"folder_{n}": root / n for n in ("broken_png", "not_png", "empty", "split")}


def _npz_cases(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), rng.integers(0, 3, 20)
    root.mkdir(parents=True)
    arrays = {
        "object": dict(x=np.array([None] * 20, dtype=object), y=y), "keys": dict(images=x, labels=y),
        "negative_labels": dict(x=x, y=np.where(np.arange(20) == 2, -1, y)),
        "float16": dict(x=x.astype(np.float16), y=y),
        "shapes": dict(x_train=x, y_train=y, x_test=x[:5, :7, :7], y_test=y[:5]),
        "empty": dict(x_train=x[:0], y_train=y[:0], x_test=x, y_test=y), "labels_2d": dict(x=x, y=y.reshape(4, 5)),
        "count": dict(x=x, y=y[:10]), "five_dims": dict(x=x.reshape(20, 1, 1, 8, 8), y=y), "ok": dict(x=x, y=y),
    }
    out = {}
    for name, a in arrays.items():
        out[f"npz_{name}"] = root / f"{name}.npz"
        np.savez(out[f"npz_{name}"], **a)
    raw = out["npz_ok"].read_bytes()
    (root / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (root / "not_zip.npz").write_bytes(b"hello world" * 20)
    np.save(root / "array.npy", x)
    out.update(npz_truncated=root / "truncated.npz", npz_not_zip=root / "not_zip.npz", npz_npy=root / "array.npy")
    return out


def _recipe_cases(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True)
    texts = {"bad_toml": "model = [unclosed", "unknown_key": 'model = "crate_nano"\nfoo = 1\n',
             "wrong_type": '[train]\nepochs = "ten"\n', "unknown_setting": "[train]\nepochz = 3\n",
             "unknown_model": 'model = "crate_nanoo"\n', "unknown_model_arg": '[model_args]\ndepthh = 2\n'}
    for name, text in texts.items():
        (root / f"{name}.toml").write_text(text)
    return {f"recipe_{n}": root / f"{n}.toml" for n in texts}


TINY_RUN = ["--model", "crate_nano", "--data", "synthetic:k=4,d=16,n=40", "--set", "dim=16", "--set", "depth=1",
            "--set", "heads=2", "--set", "patch_size=[1,4]", "--no-progress", "--no-tensorboard", "--epochs", "1",
            "--batch-size", "32", "--checkpoint-every", "2"]


def fix_sizes(run: Path) -> None:
    """Rewrite each checkpoint's meta.json sizes after a file was replaced, so the damage is found by reading."""
    for folder in (run / "checkpoints").glob("step-*"):
        meta = json.loads((folder / "meta.json").read_text())
        meta["sizes"] = {k: (folder / k).stat().st_size for k in meta["sizes"]}
        (folder / "meta.json").write_text(json.dumps(meta))


def _run_cases(root: Path) -> dict[str, Path]:
    """A real 4-step training run with checkpoints, and copies of it damaged in one way each."""
    from srr.cli import main

    good = root / "run_ok"
    assert main(["train", *TINY_RUN, "--out", str(good)]) == 0
    out = {"run_ok": good}

    def variant(name, edit_run=None, damage=None):
        folder = out[name] = root / name
        shutil.copytree(good, folder)
        if edit_run:
            run = json.loads((folder / "run.json").read_text())
            edit_run(run["model_config"])
            (folder / "run.json").write_text(json.dumps(run))
        for ckpt in list((folder / "checkpoints").glob("step-*")):
            if damage:
                damage(ckpt)
        fix_sizes(folder)

    variant("run_shapes", lambda c: c["args"].update(dim=32))
    variant("run_other_arch", lambda c: c["args"].update(attn_output="transpose"))  # CRATE-Transpose: no output projection
    variant("run_unknown_arch", lambda c: c.update(model="crate_gigantic"))
    half = lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # noqa: E731
    variant("run_weights_truncated", damage=lambda ck: half(ck / "model.safetensors"))
    variant("run_state_truncated", damage=lambda ck: half(ck / "state.pt"))
    variant("run_no_checkpoint", damage=lambda ck: shutil.rmtree(ck))
    variant("run_bad_json")
    (out["run_bad_json"] / "run.json").write_text("{oops")
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
            **_text_cases(root / "text"), **_cifar_cases(root / "cifar"), **_folder_cases(root / "folder"),
            **_npz_cases(root / "npz"), **_recipe_cases(root / "recipes"), **_run_cases(root / "runs")}
