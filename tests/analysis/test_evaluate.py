"""srr evaluate, predict and compare on tiny runs: the figures against an independent computation, predict's
preprocessing equal to the data source's own (PNG, GIF, TIFF, JPEG), the curves overlaid, mixed folders refused."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import srr
from srr.analysis import compare_runs, evaluate, open_source, predict, source_data
from srr.cli import main
from srr.errors import RunFolderError
from training_helpers import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


def image_folder(root):
    """Two classes of 10 x 10 greyscale PNGs (bright left or right half, noisy), 12 each."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(("left", "right")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            a = rng.integers(0, 60, (10, 10))
            a[:, :5] += 150 if k == 0 else 0
            a[:, 5:] += 150 if k == 1 else 0
            Image.fromarray(a.astype(np.uint8), "L").save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    data = image_folder(root / "imgs")
    out = root / "run"
    assert main(["train", "--model", "crate_nano", "--data", f"folder:{data},size=8", "--set", "dim=16", "--set",
                 "depth=1", "--set", "heads=2", "--epochs", "2", "--batch-size", "8", "--lr", "0.01",
                 "--no-progress", "--no-tensorboard", "--out", str(out)]) == 0
    return out, data


def test_evaluate_matches_an_independent_count_and_writes_the_confusion_matrix(folder_run, capsys):
    out, _ = folder_run
    assert main(["evaluate", str(out)]) == 0
    report = json.loads((out / "evaluation" / "evaluation.json").read_text())
    src = open_source(str(out))
    data = source_data(src)
    with torch.no_grad():
        logits = src.model.eval()(data.x_test)
    pred, y = logits.argmax(-1), data.y_test
    assert report["items"] == len(y) and report["accuracy"] == pytest.approx(float((pred == y).float().mean()))
    assert report["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)
    c = torch.tensor(report["confusion"])
    assert c.sum() == len(y) and torch.equal(c.sum(1), torch.bincount(y, minlength=2))
    assert c[1, 0] == int(((y == 1) & (pred == 0)).sum())
    for k in range(2):
        assert report["per_class_accuracy"][k] == pytest.approx(float((pred[y == k] == k).float().mean()))
    assert (out / "evaluation" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert f"accuracy {report['accuracy']:.4f}" in capsys.readouterr().out


def test_predict_prepares_any_pillow_format_as_the_data_source_did(folder_run, tmp_path, capsys):
    out, data = folder_run
    src = open_source(str(out))
    png = data / "right" / "3.png"
    files = [png]
    for ext in ("gif", "tiff", "bmp", "webp"):
        f = tmp_path / f"3.{ext}"
        Image.open(png).save(f, lossless=True) if ext == "webp" else Image.open(png).save(f)
        files.append(f)
    big = tmp_path / "big.jpg"  # another size: cropped to its centred square and resized like the folder source
    Image.open(png).resize((40, 30)).convert("RGB").save(big, quality=95)
    results = predict(src, files + [big], top_k=2)
    d = source_data(src)
    index = [str(f) for f in d.test_set.files + d.train_set.files].index(str(png))
    ds = d.test_set if index < len(d.test_set.files) else d.train_set
    x = ds.__getitems__([index % len(d.test_set.files) if ds is d.test_set else index - len(d.test_set.files)])[0]
    with torch.no_grad():
        want = torch.softmax(src.model.eval()(x), -1)[0]
    for r in results[:5]:  # lossless formats give the source's exact input
        top = r["top"][0]
        assert top["probability"] == pytest.approx(float(want.max()), abs=1e-6) and top["class"] == int(want.argmax())
        assert sum(t["probability"] for t in r["top"]) == pytest.approx(1.0, abs=1e-6)
    assert main(["predict", str(out), str(png), "--top-k", "1", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["top"][0]["class"] == int(want.argmax())


def test_predict_refuses_a_language_model_and_a_model_without_preprocessing(tmp_path, capsys):
    srr.create_model("crate_nano").save_pretrained(tmp_path / "bare")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "bare"), str(tmp_path / "a.png")]) == 2
    assert "records no preprocessing" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "bare"), str(tmp_path / "missing.png")]) == 2


@pytest.mark.slow
def test_compare_tabulates_runs_their_differing_settings_and_curves(folder_run, tmp_path, capsys):
    runs = []
    for lr in ("0.01", "0.003"):
        out = tmp_path / f"lr{lr}"
        assert main(["train", *TINY, "--epochs", "2", "--lr", lr, "--out", str(out)]) == 0
        runs.append(out)
    table = compare_runs(runs, tmp_path / "cmp")
    assert [r["run"] for r in table["rows"]] == ["lr0.01", "lr0.003"]
    for row, out in zip(table["rows"], runs):
        summary = json.loads((out / "summary.json").read_text())
        assert row["test_accuracy"] == summary["test_accuracy"] and row["parameters"] == summary["parameters"]
        assert row["rounds"] == 2
    assert table["differences"] == {"lr": [0.01, 0.003]}
    assert "| lr | 0.01 | 0.003 |" in table["markdown"]
    assert {p.name for p in (tmp_path / "cmp").iterdir() if not p.name.startswith(".")} == {
        "compare.json", "compare.md", "compare.png"}
    assert main(["compare", str(runs[0]), str(folder_run[0]), "--out", str(tmp_path / "cmp2")]) == 0
    printed = capsys.readouterr().out
    assert "| model.patch_size | [1, 4] | 2 |" in printed and "| model.image_size | [1, 16] | 8 |" in printed


def test_a_folder_mixing_two_runs_is_refused_by_every_reader(folder_run, tmp_path, capsys):
    out, _ = folder_run
    mixed = tmp_path / "mixed"
    shutil.copytree(out, mixed)
    run = json.loads((mixed / "run.json").read_text())
    run["model_config"]["model"] = "crate_transpose_nano"
    (mixed / "run.json").write_text(json.dumps(run))
    with pytest.raises(RunFolderError, match="mixes two runs: run.json describes crate_transpose_nano"):
        open_source(str(mixed))
    for argv in (["evaluate", str(mixed)], ["compare", str(mixed), "--out", str(tmp_path / "c")],
                 ["predict", str(mixed), str(tmp_path / "x.png")]):
        assert main(argv) == 2
        assert "mixes two runs" in capsys.readouterr().err
