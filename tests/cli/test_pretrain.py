"""``srr pretrain``: --method picks the self-supervised objective; the rest is ``srr train``'s engine and run folder."""
import json

import pytest
import torch

from srr.cli import main
from srr.models import from_pretrained

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--model", "crate_nano", "--set", "dim=16", "--set", "depth=1", "--set", "heads=2", "--set", "patch_size=2",
        "--head-hidden", "16", "--head-dim", "8", "--batch-size", "128", "--epochs", "1", "--local-crops", "1",
        "--knn-bank", "300", "--no-probe", "--no-progress", "--no-tensorboard"]


def test_pretrain_mcr2_trains_mcr2_views_and_saves_the_backbone(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", "--method", "mcr2", *TINY, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objective"] == "mcr2_views" and summary["data"] == "digits"
    assert 0.1 < summary["test_knn"] <= 1 and "test_linear_probe" not in json.loads(
        (out / "metrics.jsonl").read_text().splitlines()[-1])
    model = from_pretrained(out)
    assert model.features(torch.zeros(2, 1, 8, 8)).shape == (2, 16)
    assert "mcr2_views" in capsys.readouterr().out


def test_pretrain_refuses_a_method_on_resume_and_settings_of_other_methods(tmp_path, capsys):
    assert main(["pretrain", "--resume", str(tmp_path), "--method", "dino"]) == 2
    assert "--method cannot change a resumed run" in capsys.readouterr().err
    assert main(["pretrain", "--method", "simdino", *TINY, "--prototypes", "8", "--out", str(tmp_path / "x")]) == 2
    assert "--prototypes does not apply to --objective simdino (it belongs to dino)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("method", ["simdino", "mcr2"])
def test_bf16_with_accumulation_trains(method, tmp_path, capsys):
    # under bfloat16 autocast a Gram matrix formed in bfloat16 is not positive semi-definite to round-off: the
    # losses form theirs in float32
    out = tmp_path / method
    assert main(["pretrain", "--method", method, *TINY, "--precision", "bf16", "--accumulate", "2", "--out",
                 str(out)]) == 0
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["train_loss"] < 0 and 0.1 < row["test_knn"] <= 1  # both losses are negative (rates subtracted)
