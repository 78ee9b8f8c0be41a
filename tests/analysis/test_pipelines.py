"""The pipelines of srr.analysis on every kind of run: layer statistics of any family (the model's own subspaces or
PCA of the tokens), reports of image, MCR², language-model and ReduNet runs, runs that name their own data, outputs
published whole (tests/reliability/test_run_folders.py: outputs never over inputs, reports killed at random)."""
import json
import shutil

import pytest
import torch

import srr
from srr.analysis import analyze, open_source, source_data
from srr.analysis.layers import layer_bases, layer_statistics
from srr.cli import main
from srr.errors import DataFileNotFoundError
from idx_files import make_mnist_like
from training_helpers import TINY, text_file, tiny_lm

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pca_subspaces_are_the_top_principal_directions_cut_into_heads():
    model = srr.create_model("vit_nano").eval()  # 4 heads of width 16 on d = 64
    z = torch.randn(3, 17, 64) * torch.linspace(3, 0.1, 64)  # coordinates with decreasing energy
    bases = layer_bases(model, "pca", [z, z])
    assert bases[0].shape == (4, 64, 16)
    _, _, vh = torch.linalg.svd(z.reshape(-1, 64).double(), full_matrices=False)
    torch.testing.assert_close(bases[0][1].double().abs(), vh[16:32].T.abs(), atol=1e-5, rtol=0)  # head 2: next 16


def test_layer_statistics_open_a_vit_and_compare_with_crate_in_one_report(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(6, 1, 8, 8)
    vit = srr.create_model("vit_nano")
    rows = layer_statistics(vit, x, basis="model")
    assert [r["layer"] for r in rows] == [1, 2] and all(r["compression_mean"] > 0 for r in rows)
    assert all(0.9 < r["sparsity_mean"] <= 1.0 for r in rows)  # a ViT block's output is dense
    sources = [open_source("crate_nano"), open_source("vit_nano")]
    report = analyze(sources, source_data(sources[0]), tmp_path / "both", samples=16)
    assert set(report["models"]) == {"crate_nano model", "crate_nano random init", "vit_nano model",
                                     "vit_nano random init"}
    assert set(report["pca"]) == set(report["models"]) and report["images"] == 16
    assert "value projection" in report["basis"]["vit_nano model"] and "qkv" in report["basis"]["crate_nano model"]
    assert (tmp_path / "both" / "layers.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # published whole, nothing left over


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    argv = [*tiny_lm(text_file(root)), "--steps", "6", "--eval-every", "3", "--out", str(root / "run")]
    assert main(["train", *argv]) == 0
    return root / "run"


def test_a_language_model_run_is_analysed_and_reported_without_being_told_its_data(lm_run, capsys):
    assert main(["analyze", str(lm_run), "--samples", "4"]) == 0
    layers = json.loads((lm_run / "analysis" / "layers.json").read_text())
    assert layers["data"].startswith("text:") and layers["images"] == 4 and len(layers["models"]["trained"]) == 2
    assert main(["report", str(lm_run), "--samples", "4"]) == 0
    page = (lm_run / "report.html").read_text()
    for heading in ("Training curves", "Layer by layer", "Attention patterns", "Circuits", "Generated text"):
        assert f"<h2>{heading}" in page
    assert "In-context learning: loss" in page and "<th>induction</th>" in page
    assert "feature ansatz" not in page.lower() or "not shown" in page
    config = json.loads((lm_run / "config.json").read_text())
    assert config["task"] == "lm" and config["tokenizer"] == "bytes" and config["objective"] == "lm"


def test_an_mcr2_run_report_has_linear_loss_axes_and_no_ansatz(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--objective", "mcr2", *TINY, "--epochs", "2", "--batch-size", "64", "--out", str(out)]) == 0
    assert main(["report", str(out), "--samples", "16"]) == 0
    page = (out / "report.html").read_text()
    assert "feature ansatz (an MCR² run&#x27;s classifier head is untrained)" in page
    metrics = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train_loss"] < 0 for r in metrics)  # −ΔR: a log axis could not show it
    assert json.loads((out / "config.json").read_text())["preprocessing"]["image_size"] == [1, 16]


def test_a_redunet_run_loads_like_every_model_and_is_reported(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["redunet", "--data", "synthetic:k=3,d=8,n=20", "--layers", "3", "--no-progress", "--out",
                 str(out)]) == 0
    net = srr.from_pretrained(out)
    assert type(net).__name__ == "ReduNet" and net.built and net.config.layers == 3
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "<h2>ReduNet: rates per layer" in page and "ΔR" in page
    assert main(["redunet", "--data", "synthetic:k=3,d=8,n=20", "--layers", "3", "--no-progress", "--out",
                 str(out)]) == 2
    assert "already holds another run" in capsys.readouterr().err


def test_a_run_names_its_own_data_and_says_when_it_is_gone(tmp_path, capsys):
    folder = tmp_path / "mnist"
    make_mnist_like(folder)
    out = tmp_path / "run"
    assert main(["train", "--model", "crate_nano", "--data", f"idx:{folder}", "--set", "dim=16", "--set", "depth=1",
                 "--set", "heads=2", "--set", "patch_size=3", "--epochs", "1", "--no-progress", "--out",
                 str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == f"idx:{folder}" and config["preprocessing"]["image_size"] == [6, 6]
    assert main(["analyze", str(out), "--samples", "5"]) == 0  # no --data: the run's own
    shutil.rmtree(folder)
    with pytest.raises(DataFileNotFoundError, match="the data .* was trained on; pass --data"):
        source_data(open_source(str(out)))
