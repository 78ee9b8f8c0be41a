"""The Hugging Face Hub: a Hub id resolves through huggingface_hub's cache (offline here: the test fills the cache
itself, nothing reaches the network), push_to_hub uploads the saved folder with its model card, and the model that
comes back is the one that went in, exactly."""
import hashlib
import shutil

import pytest
import torch

import srr
from srr.errors import DataFileNotFoundError
from srr.models.hub import is_hub_id

hub = pytest.importorskip("huggingface_hub")
import huggingface_hub.constants  # noqa: E402  (the cache and offline switches the fixture redirects)


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def put_in_cache(cache, repo_id: str, folder) -> str:
    """Lay ``folder``'s files out as huggingface_hub caches a repository: blobs by hash, a snapshot per commit,
    ``refs/main`` naming the commit."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snap = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        blob = root / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copyfile(f, blob)
        (snap / f.name).symlink_to(blob)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return commit


def test_a_hub_id_loads_from_the_cache_offline_and_equals_the_saved_model(tmp_path, offline_cache):
    torch.manual_seed(3)
    model = srr.create_model("crate_nano").eval()
    model.save_pretrained(tmp_path / "saved")
    commit = put_in_cache(offline_cache, "someone/crate-nano", tmp_path / "saved")
    back = srr.from_pretrained("someone/crate-nano").eval()
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(back(x), model(x))
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), model.state_dict().values()))
    assert srr.from_pretrained(f"someone/crate-nano@{commit}").name == "crate_nano"  # a pinned revision


def test_push_to_hub_uploads_config_weights_and_card_and_loads_back(tmp_path, offline_cache, monkeypatch):
    uploads = []

    class FakeApi:  # stands in for the Hub: what is uploaded lands in the local cache
        def __init__(self, token=None):
            self.token = token

        def create_repo(self, repo_id, private=None, exist_ok=False, repo_type=None):
            return f"hub://{repo_id}"

        def upload_folder(self, folder_path, repo_id, repo_type=None, commit_message=None):
            uploads.append((repo_id, sorted(p.name for p in __import__("pathlib").Path(folder_path).iterdir())))
            put_in_cache(offline_cache, repo_id, __import__("pathlib").Path(folder_path))

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    torch.manual_seed(4)
    model = srr.create_model("vit_nano").eval()
    assert model.push_to_hub("lab/vit-nano", metrics={"test_accuracy": 0.5}) == "hub://lab/vit-nano"
    assert uploads == [("lab/vit-nano", ["README.md", "config.json", "model.safetensors"])]
    back = srr.from_pretrained("lab/vit-nano").eval()
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(back(x), model(x))
    card = (back.saved_from / "README.md").read_text()
    assert "# vit_nano" in card and "| test_accuracy | 0.5 |" in card and "An Image is Worth 16x16 Words" in card


def test_a_missing_hub_model_offline_is_one_line_naming_the_offline_mode(offline_cache):
    with pytest.raises(DataFileNotFoundError, match="neither a folder here nor a model.*HF_HUB_OFFLINE") as err:
        srr.from_pretrained("nobody/nothing")
    assert "\n" not in str(err.value)


def test_a_path_under_a_local_folder_is_never_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert not is_hub_id("runs/typo") and is_hub_id("org/name") and is_hub_id("org/name@v1.0")
    assert not is_hub_id("a/b/c") and not is_hub_id("/abs/path")
    with pytest.raises(DataFileNotFoundError, match="runs/typo holds no config.json"):
        srr.from_pretrained("runs/typo")


@pytest.mark.slow
def test_srr_predict_and_evaluate_take_a_hub_id(tmp_path, offline_cache, capsys, monkeypatch):
    import numpy as np
    from PIL import Image

    from srr.cli import main

    torch.manual_seed(5)
    model = srr.create_model("crate_nano", dim=16, depth=1, heads=2)
    pre = {"mean": [0.5], "std": [0.25], "image_size": [8, 8], "channels": 1}
    model.save_pretrained(tmp_path / "saved", extra={"data": "digits", "preprocessing": pre})
    put_in_cache(offline_cache, "lab/digits", tmp_path / "saved")
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, "L").save(tmp_path / "a.png")
    assert main(["predict", "lab/digits", str(tmp_path / "a.png"), "--top-k", "1", "--json"]) == 0
    got = __import__("json").loads(capsys.readouterr().out)[0]["top"][0]
    x = (torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8) * 4 / 255 - 0.5) / 0.25
    with torch.no_grad():
        p = torch.softmax(model.eval()(x), -1)[0]
    assert got["class"] == int(p.argmax()) and abs(got["probability"] - float(p.max())) < 1e-6
    monkeypatch.chdir(tmp_path)  # the default output of a Hub model goes to runs/, never into the Hub cache
    assert main(["evaluate", "lab/digits"]) == 0  # its recorded data: the digits
    assert "accuracy" in capsys.readouterr().out and (tmp_path / "runs" / "evaluation-crate_nano").is_dir()
    assert not any(p.name == "evaluation" for p in offline_cache.rglob("*"))
