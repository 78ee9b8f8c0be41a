"""Emergent segmentation: the 60 %-mass rule, Jaccard, PCA masks and outlier tokens on hand-made cases; ``srr
segment`` end to end."""
import json

import numpy as np
import pytest
import torch

from srr.analysis.segmentation import jaccard, mass_mask, pca_mask, token_norm_statistics, upsample_mask
from srr.cli import main
from srr.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_60_percent_mass_rule_on_a_hand_made_map():
    a = torch.tensor([[0.45, 0.25], [0.20, 0.10]])
    assert mass_mask(a).tolist() == [[True, True], [False, False]]  # 0.45 < 0.6, 0.45 + 0.25 = 0.7 >= 0.6
    assert mass_mask(3 * a).tolist() == [[True, True], [False, False]]  # the mass is normalised first
    assert mass_mask(a, 0.9).tolist() == [[True, True], [True, False]]  # exactly 0.9 with three patches
    assert mass_mask(a, 0.4).tolist() == [[True, False], [False, False]]
    batch = torch.stack([a, a.flip(-1)])[:, None]  # (2, 1, 2, 2): each map on its own
    assert mass_mask(batch)[1, 0].tolist() == [[True, True], [False, False]]
    with pytest.raises(DataError, match="non-negative"):
        mass_mask(-a)


def test_jaccard_and_upsampling_on_hand_made_masks():
    truth = np.zeros((4, 4), bool)
    truth[1:3, 1:3] = True  # 4 pixels
    pred = np.zeros((4, 4), bool)
    pred[1, 1:4] = True  # 3 pixels, 2 of them in the truth
    assert jaccard(pred, truth) == pytest.approx(2 / 5)
    assert jaccard(truth, truth) == 1.0 and jaccard(~truth, truth) == 0.0
    assert jaccard(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    up = upsample_mask(torch.tensor([[True, False], [False, False]]), (2, 3))
    assert up.shape == (4, 6) and int(up.sum()) == 6 and bool(up[:2, :3].all())


def test_pca_mask_marks_the_smaller_cluster():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(16, 5, generator=g) * 0.01
    tokens[[3, 7, 8]] += torch.tensor([4.0, 0, 0, 0, 0])
    mask = pca_mask(tokens, (4, 4))
    assert sorted(mask.flatten().nonzero().flatten().tolist()) == [3, 7, 8]
    assert torch.equal(pca_mask(-tokens, (4, 4)), mask)  # the sign of the component does not matter


def test_outlier_tokens_are_counted_and_located():
    out = torch.ones(2, 1 + 4, 3)
    out[0, 0] = 100.0  # the CLS token is not a patch token
    out[1, 2] *= 10  # patch 1 of image 1, on the background
    objects = np.array([[True, False, False, False], [True, False, False, True]])
    (row,) = token_norm_statistics([out], objects)
    assert row["outlier_fraction"] == pytest.approx(1 / 8)
    assert row["outliers_on_background"] == 1.0 and row["background_fraction"] == pytest.approx(5 / 8)
    assert row["median"] == pytest.approx(3 ** 0.5)


def test_segment_command_writes_the_report(tmp_path, capsys):
    out = tmp_path / "seg"
    argv = ["segment", "crate_nano", "--data", "scenes:n=4,test=6", "--set", "patch_size=4", "--set", "pool=cls",
            "--set", "dim=16", "--set", "heads=2", "--set", "depth=2", "--images", "5", "--out", str(out)]
    assert main(argv) == 0
    r = json.loads((out / "segmentation.json").read_text())
    assert r["images"] == 5 and len(r["jaccard_per_head"]) == 2 and r["grid"] == [8, 8]
    assert r["jaccard_best_head"] == max(r["jaccard_per_head"]) and r["best_head"] == 1 + int(
        np.argmax(r["jaccard_per_head"]))
    assert r["jaccard_mean_over_heads"] == pytest.approx(np.mean(r["jaccard_per_head"]))
    assert len(r["token_norms"]) == 2 and {p.name for p in out.iterdir()} >= {"segmentation.png", "token_norms.png"}
    assert main(["segment", "crate_nano", "--data", "digits", "--out", str(tmp_path / "no")]) == 2
    assert "has no object masks: srr segment needs --data scenes" in capsys.readouterr().err


@pytest.mark.slow
def test_report_of_a_run_on_scenes_has_the_segmentation_section(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "crate_nano", "--data", "scenes:n=64,test=16,size=16,min_glyph=6,max_glyph=8",
                 "--set", "patch_size=4", "--set", "pool=cls", "--set", "dim=16", "--set", "heads=2", "--set",
                 "depth=1", "--epochs", "1", "--batch-size", "32", "--no-progress", "--no-tensorboard", "--out",
                 str(run)]) == 0
    assert main(["report", str(run), "--samples", "16", "--ansatz-samples", "16"]) == 0
    page = (run / "report.html").read_text()
    assert "Segmentation and outlier tokens" in page and (run / "segment" / "segmentation.json").is_file()
    assert json.loads((run / "segment" / "segmentation.json").read_text())["images"] == 16
