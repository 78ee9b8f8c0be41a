"""The command line: training writes its files and is deterministic; analysis; one-line errors on bad input."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from srr.cli import main

TINY = ["--model", "crate_nano", "--set", "dim=16", "--set", "depth=2", "--set", "heads=2", "--epochs", "2",
        "--no-progress"]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_models_lists_published_counts(capsys):
    code, out, _ = run(capsys, "models", "crate_*")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("crate_tiny "))
    assert "6,090,856" in line
    assert "77,641,192" in next(ln for ln in out.splitlines() if ln.startswith("crate_large"))


def test_train_writes_metrics_summary_and_model_deterministically(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(capsys, "train", *TINY, "--out", str(a), "--seed", "3")[0] == 0
    assert run(capsys, "train", *TINY, "--out", str(b), "--seed", "3")[0] == 0
    lines = [json.loads(ln) for ln in (a / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert set(lines[0]) == {"epoch", "step", "train_loss", "test_loss", "test_accuracy", "lr", "images",
                             "images_per_second", "seconds"}
    assert [r["step"] for r in lines] == [12, 24] and lines[-1]["images"] == 2 * 1438  # 12 batches of 128 (last 30)
    summary = json.loads((a / "summary.json").read_text())
    assert summary["model"] == "crate_nano" and summary["data"] == "digits"
    assert summary["test_accuracy"] == lines[-1]["test_accuracy"] and summary["parameters"] > 0
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((a / "config.json").read_text())["args"]["dim"] == 16


def test_analyze_reports_trained_and_random(tmp_path, capsys):
    run(capsys, "train", *TINY, "--out", str(tmp_path / "r"))
    code, out, _ = run(capsys, "analyze", str(tmp_path / "r"), "--samples", "40")
    assert code == 0
    report = json.loads((tmp_path / "r" / "analysis" / "layers.json").read_text())
    assert set(report["models"]) == {"trained", "random init"}
    rows = report["models"]["trained"]
    assert [r["layer"] for r in rows] == [1, 2]
    assert all(0.0 <= r["sparsity_mean"] <= 1.0 and r["compression_mean"] > 0 for r in rows)
    png = (tmp_path / "r" / "analysis" / "layers.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--model", "crate_tinny"], "unknown model 'crate_tinny'"),
        (["train", "--data", "cifar11"], "unknown data source 'cifar11'"),
        (["train", "--set", "patch_size=3"], "not divisible by the patch size"),
        (["train", "--set", "channels=3", "--epochs", "1"], "expects images of shape (batch, 3, 8, 8)"),
        (["train", "--data", "idx:/nonexistent/mnist"], "IDX folder not found"),
        (["train", "--epochs", "0"], "--epochs must lie in [1, 1000000], got 0"),
        (["analyze", "/nonexistent-run-dir"], "unknown model"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, capsys, argv, message):
    code, _, err = run(capsys, *argv, *(["--out", str(tmp_path / "o")] if argv[0] == "train" else []))
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_truncated_idx_file_via_cli(tmp_path, capsys):
    from idx_files import make_mnist_like

    make_mnist_like(tmp_path / "m", gz=True)
    f = tmp_path / "m" / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-9])
    code, _, err = run(capsys, "train", "--data", f"idx:{tmp_path / 'm'}", "--out", str(tmp_path / "o"))
    assert code == 2 and "gzip" in err and len(err.strip().splitlines()) == 1


def test_console_script_runs_as_a_process():
    proc = subprocess.run([sys.executable, "-m", "srr", "train", "--model", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "srr train: error: unknown model 'nope'; `srr models` lists them"
