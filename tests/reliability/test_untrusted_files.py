"""Untrusted files (issue 8, item 3): a pickle that runs code when unpickled, put where every srr loading path reads a
user's file, runs nothing (its marker file is never created) and is refused with a clear message.

Payloads: ``os.system("touch MARKER")`` as a protocol-2 pickle, ``exec("open(MARKER, 'w')")`` as a protocol-4
pickle, and a ``torch.save`` zip whose ``data.pkl`` holds the first. A control test shows each payload is live:
``pickle.loads`` / ``torch.load(weights_only=False)`` of the same bytes do create the marker.
"""
import io
import os
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
from bad_files import TINY_RUN, fix_sizes, idx_bytes
from reliability_counts import tried

import srr
from srr.cli import main
from srr.errors import SrrError


class RunsShell:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class RunsPython:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def payloads(marker) -> dict[str, bytes]:
    buffer = io.BytesIO()
    torch.save({"optimizer": RunsShell(marker), "weight": torch.zeros(2)}, buffer)
    return {
        "pickle2-os.system": pickle.dumps({b"data": RunsShell(marker), b"labels": [0]}, protocol=2),
        "pickle4-exec": pickle.dumps({"data": RunsPython(marker), "labels": [0]}, protocol=4),
        "torch.save-zip": buffer.getvalue(),
    }


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Good files of every kind, copied and poisoned by each test."""
    root = tmp_path_factory.mktemp("untrusted")
    small = dict(dim=16, depth=1, heads=2, image_size=8, channels=1, num_classes=10)
    srr.create_model("crate_nano", **small).save_pretrained(root / "model")
    srr.create_model("crate_gpt_nano", dim=32, depth=1, heads=2).save_pretrained(root / "lm")
    assert main(["train", *TINY_RUN, "--out", str(root / "run")]) == 0
    from srr.redunet import ReduNet

    net = ReduNet(num_classes=2, layers=1, channels=4)
    net.build(torch.randn(10, 4), torch.arange(10) % 2)
    net.save(root / "redunet")
    return root


class Case:
    """What a poisoning step needs: the payload's bytes and objects, a scratch folder, the good files, capsys."""

    def __init__(self, name, data, objects, tmp, base, capsys):
        self.name, self.data, self.objects, self.tmp, self.base, self.capsys = name, data, objects, tmp, base, capsys

    def copy(self, name):
        return shutil.copytree(self.base / name, self.tmp / name)

    def library(self, fn):
        """A loader that calls ``fn`` and returns the message of the SrrError it must raise."""
        def load():
            with pytest.raises(SrrError) as info:
                fn()
            return str(info.value)
        return load

    def command(self, *argv):
        """A loader that runs the CLI and returns its one-line error (exit code 2, no traceback)."""
        def load():
            code = main([str(a) for a in argv])
            err = self.capsys.readouterr().err
            assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
            return err
        return load

    def run_with(self, name):
        """A copy of the training run whose checkpoints hold the payload as ``name`` (sizes fixed to match)."""
        run = self.copy("run")
        for folder in (run / "checkpoints").glob("step-*"):
            (folder / name).write_bytes(self.data)
        fix_sizes(run)  # the sizes check out, so the content itself is what gets read
        return run


def poison_from_pretrained(c):
    (c.copy("model") / "model.safetensors").write_bytes(c.data)
    return c.library(lambda: srr.from_pretrained(c.tmp / "model"))


def poison_analyze(c):
    (c.copy("model") / "model.safetensors").write_bytes(c.data)
    return c.command("analyze", c.tmp / "model", "--samples", "4", "--out", c.tmp / "a")


def poison_generate(c):
    (c.copy("lm") / "model.safetensors").write_bytes(c.data)
    return c.command("generate", c.tmp / "lm", "--tokens", "2")


def poison_report(c):
    (c.copy("run") / "model.safetensors").write_bytes(c.data)
    return c.command("report", c.tmp / "run", "--out", c.tmp / "r.html")


def poison_attention(c):
    (c.copy("model") / "model.safetensors").write_bytes(c.data)
    return c.command("attention", c.tmp / "model", "--out", c.tmp / "a")


def poison_config_json(c):
    (c.copy("model") / "config.json").write_bytes(c.data)
    return c.command("analyze", c.tmp / "model", "--samples", "4", "--out", c.tmp / "a")


def poison_init(c):
    (c.tmp / "weights.pt").write_bytes(c.data)
    return c.command("train", *TINY_RUN, "--out", c.tmp / "o", "--init", c.tmp / "weights.pt")


def poison_resume_state(c):
    return c.command("train", "--no-progress", "--resume", c.run_with("state.pt"))


def poison_resume_weights(c):
    return c.command("train", "--no-progress", "--resume", c.run_with("model.safetensors"))


def poison_load_checkpoint(c):
    from srr.training.checkpoint import find_latest, load_checkpoint

    run = c.run_with("state.pt")
    return c.library(lambda: load_checkpoint(find_latest(run)))


def poison_run_json(c):
    (c.copy("run") / "run.json").write_bytes(c.data)
    return c.command("train", "--no-progress", "--resume", c.tmp / "run")


def _cifar(c, kind, poisoned):
    folder = c.tmp / kind
    folder.mkdir()
    good = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"fine_labels": [0, 1]}, 2)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if kind == "cifar10" else ["train", "test"]
    for n in names:
        (folder / n).write_bytes(c.data if n == poisoned else good)
    return c.command("train", *TINY_RUN[2:], "--data", f"{kind}:{folder}", "--out", c.tmp / "o")


def poison_cifar10(c):
    return _cifar(c, "cifar10", "data_batch_2")


def poison_cifar100(c):
    return _cifar(c, "cifar100", "test")


def poison_npz(c):
    """An npz holds arrays, not files: the payload's objects go in as an object array (numpy pickles them)."""
    x = np.empty(4, dtype=object)
    x[:] = [c.objects] * 4
    np.savez(c.tmp / "data.npz", x=x, y=np.zeros(4, np.int64))
    return c.command("train", *TINY_RUN[2:], "--data", f"npz:{c.tmp / 'data.npz'}", "--out", c.tmp / "o")


def poison_redunet(c):
    from srr.redunet import ReduNet

    (c.copy("redunet") / "model.safetensors").write_bytes(c.data)
    return c.library(lambda: ReduNet.load(c.tmp / "redunet"))


def poison_idx(c):
    folder = c.tmp / "idx"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte").write_bytes(c.data)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    return c.command("train", *TINY_RUN[2:], "--data", f"idx:{folder}", "--out", c.tmp / "o")


def poison_png(c):
    for label in ("a", "b"):
        (c.tmp / "images" / label).mkdir(parents=True)
        for i in range(3):  # 6 files: the fixed 80/20 split leaves one for testing
            (c.tmp / "images" / label / f"{i}.png").write_bytes(c.data)
    return c.command("train", *TINY_RUN[2:], "--data", f"folder:{c.tmp / 'images'}", "--out", c.tmp / "o")


def poison_recipe(c):
    (c.tmp / "recipe.toml").write_bytes(c.data)
    return c.command("train", "--recipe", c.tmp / "recipe.toml", "--out", c.tmp / "o")


PATHS = {name[len("poison_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("poison_")}
UNPICKLED = r"refusing to load the global (posix\.system|builtins\.exec)"  # CIFAR's unpickler names what it refused
EXPECT = {
    "from_pretrained": r"model.safetensors is not a readable safetensors file",
    "analyze": r"model.safetensors is not a readable safetensors file",
    "generate": r"model.safetensors is not a readable safetensors file",
    "report": r"model.safetensors is not a readable safetensors file",
    "attention": r"model.safetensors is not a readable safetensors file",
    "config_json": r"config.json is not valid JSON",
    "init": r"weights.pt is not a readable safetensors file",
    "resume_state": r"state.pt holds more than tensors and plain data.*refused, since loading it could run code",
    "resume_weights": r"model.safetensors is not readable",
    "load_checkpoint": r"state.pt holds more than tensors and plain data.*refused, since loading it could run code",
    "run_json": r"run.json is not valid JSON",
    "cifar10": {"torch.save-zip": r"data_batch_2: truncated or corrupt pickle", None: r"data_batch_2: .*" + UNPICKLED},
    "cifar100": {"torch.save-zip": r"test: truncated or corrupt pickle", None: r"test: .*" + UNPICKLED},
    "npz": r"data.npz: cannot read it without unpickling objects",
    "redunet": r"model.safetensors is not a readable safetensors file",  # the same loader as every model
    "idx": r"not an IDX file \(bad magic number\)",
    "png": r"\d.png: cannot decode the image",
    "recipe": r"recipe.toml is not valid TOML",
}
PAYLOADS = ("pickle2-os.system", "pickle4-exec", "torch.save-zip")


def _payload(name, marker):
    objects = RunsPython(marker) if name == "pickle4-exec" else RunsShell(marker)
    return payloads(marker)[name], objects


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("path", sorted(PATHS))
def test_poisoned_file_runs_nothing_and_is_refused(path, payload, base, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    load = PATHS[path](Case(payload, *_payload(payload, marker), tmp_path, base, capsys))
    message = load()
    tried("untrusted_loads_refused")
    assert not marker.exists(), f"{path} ran the code in a {payload} file"
    expect = EXPECT[path] if isinstance(EXPECT[path], str) else EXPECT[path].get(payload, EXPECT[path][None])
    assert re.search(expect, message), message


@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_source_reads_a_pickle_as_plain_bytes(payload, tmp_path):
    """Every byte sequence is valid text for the byte-level language models: the file is data, never code."""
    marker = tmp_path / "MARKER"
    data = _payload(payload, marker)[0] * 4
    (tmp_path / "corpus.txt").write_bytes(data)
    text = srr.data.load_text(f"text:{tmp_path / 'corpus.txt'}")
    tried("untrusted_loads_as_bytes")
    assert not marker.exists()
    assert bytes(torch.cat([text.train, text.val]).tolist()) == data


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_payloads_are_live(payload, tmp_path):
    """Control: a plain unpickler (or torch.load with weights_only=False) does run the code."""
    marker = tmp_path / "MARKER"
    data = _payload(payload, marker)[0]
    if payload == "torch.save-zip":
        torch.load(io.BytesIO(data), weights_only=False)
    else:
        pickle.loads(data)
    assert marker.exists()
