"""``srr circuits``: the report, its figures and the table for a language model and an image model; bad values are
one-line errors."""
import json

import pytest

from srr.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_circuits_of_a_language_model(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    out = tmp_path / "out"
    argv = ["circuits", "gpt_nano", "--set", "dim=16", "--set", "depth=2", "--set", "heads=2", "--set", "context=16",
            "--data", f"text:{corpus}", "--samples", "4", "--top", "3", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "circuits.json").read_text())
    assert len(report["heads"]) == 4 and len(report["composition"]) == 4
    assert report["probe"]["length"] == 8 and len(report["pattern_scores"]) == 4
    assert len(report["tokens"]["direct_path"]["top_pairs"]) == 3
    assert report["tokens"]["direct_path"]["asymmetry"] < 1e-12  # tied embeddings: a symmetric direct path
    assert report["logit_lens"][-1]["kl_to_final"] == 0.0 and len(report["head_ablation"]["heads"]) == 4
    for name in ("qk.png", "ov.png", "composition.png", "scores.png", "logit_lens.png"):
        assert (out / name).stat().st_size > 1000
    table = capsys.readouterr().out
    assert "in-context learning" in table and table.count("mhsa") == 4
    assert main(argv[:-2] + ["--length", "9", "--out", str(tmp_path / "o2")]) == 2
    assert "--length must lie in [2, 8], got 9" in capsys.readouterr().err


def test_circuits_of_an_image_model(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["circuits", "crate_nano", "--set", "dim=16", "--set", "depth=2", "--set", "heads=2",
                 "--samples", "8", "--out", str(out)]) == 0
    report = json.loads((out / "circuits.json").read_text())
    assert all(h["qk_symmetric_psd"] and h["qk_symmetry"] < 1e-14 for h in report["heads"])
    assert "pattern_scores" not in report and report["lens_data"] == "digits"
    assert all(abs(r["q"] - r["k"]) < 1e-9 for r in report["composition"])
    assert not (out / "scores.png").exists()


def test_a_probe_length_for_an_image_model_is_refused_not_ignored(tmp_path, capsys):
    assert main(["circuits", "crate_nano", "--set", "dim=16", "--set", "depth=1", "--set", "heads=2", "--length", "5",
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--length sets the repeated-token probe of a language model" in err
    assert not (tmp_path / "c").exists()
