"""Files and folders srr writes get the mode the user's umask allows (not tempfile's 0o600 / 0o700), so a colleague
in the group can read a saved model."""
import os
import stat

import pytest
import torch

import srr
from srr.io import atomic_write_json, umask_mode
from srr.runfolder import publish_folder


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_saved_files_and_published_folders_follow_the_umask(tmp_path, umask_022):
    assert umask_mode() == 0o644 and umask_mode(directory=True) == 0o755
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert mode(tmp_path / "a.json") == 0o644
    srr.create_model("crate_nano").save_pretrained(tmp_path / "model")
    assert {p.name: mode(p) for p in (tmp_path / "model").iterdir()} == {
        "config.json": 0o644, "model.safetensors": 0o644, "README.md": 0o644}
    with publish_folder(tmp_path / "analysis") as tmp:
        (tmp / "f.txt").write_text("x")
    assert mode(tmp_path / "analysis") == 0o755


def test_a_stricter_umask_is_respected(tmp_path):
    before = os.umask(0o077)
    try:
        atomic_write_json(tmp_path / "b.json", [])
    finally:
        os.umask(before)
    assert mode(tmp_path / "b.json") == 0o600
    torch.manual_seed(0)
