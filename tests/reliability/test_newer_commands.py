"""The second hostile pass: the commands added after the first one (``evaluate``, ``predict``, ``compare``, ``export``,
``convert``, ``denoise``, ``sparse-coding``, ``ansatz``) and the Python API behind them (``srr.analysis.evaluate``,
``compare``, ``srr.interop``, ``srr.principles``), grouped by the classes of the first pass:

1. ``folders`` — an output replaced a folder or file it did not own (a run's ``checkpoints``, the user's files, the
   working directory) or landed inside a run: refused, and what was there is intact;
2. ``resources`` — reads that never end (a named pipe or a device where a file goes) and inflation bombs, refused
   before reading;
3. ``values`` — a value refused where it enters (a flag, ``--set``, ``config.json``'s ``preprocessing``, ``run.json``,
   a checkpoint's structure), including flags that would have been silently ignored;
4. ``wrong`` — non-finite or ill-typed input that gave a plausible answer (NaN probabilities, a cast weight, a NaN
   accuracy in a table) is refused;
5. ``one-line`` — what raised a foreign exception (IndexError, ZeroDivisionError, an allocation error) is one line.

Every command-line case checks exit status 2, one stderr line matching its pattern, no traceback and no warning, and
that the files it must not touch are byte for byte what they were. ``API`` holds the Python cases (same classes).
``notes/hardening_report.md`` lists each finding with what happened before the fix.
"""
import hashlib
import json
import os
import re
import warnings

import numpy as np
import pytest
import torch
from reliability_counts import tried

import srr
from srr.analysis import compare_runs
from srr.analysis.evaluate import evaluate_images, evaluate_text, load_images
from srr.cli import main
from srr.errors import CheckpointError, ConfigError, DataError, NonFiniteError, ResourceError, RunFolderError, SrrError
from srr.interop import convert
from srr.interop.export import example_input, export_model
from srr.principles import (fista, ista, kernel_agop, laplace_kernel, lasso_objective, layer_alignment, lipschitz,
                            low_rank_mixture, mse_curves, nearest_subspace, network_denoisers, oracle_mean,
                            posterior_mean, reverse_sample, rfm, whitened_frame)

pytestmark = pytest.mark.usefixtures("one_thread")

DENOISE = ["denoise", "--samples", "64", "--tokens", "8", "--levels", "2", "--sampler-samples", "8",
           "--sampler-steps", "2"]
SPARSE = ["sparse-coding", "--n", "200", "--d", "8", "--atoms", "8", "--k", "1", "--iterations", "5", "--depths",
          "1", "--epochs", "1", "--crate-dim", "8", "--crate-tokens", "8"]

# (class, id, argv, pattern, the fixture's paths that must be left untouched)
CASES = [
    # 1. outputs over what they do not own — each was exit 0 and deleted or replaced the folder or file
    ("folders", "evaluate-into-the-runs-checkpoints", ["evaluate", "{run}", "--out", "{run}/checkpoints"],
     r"is the run's own checkpoints folder", ["run"]),
    ("folders", "compare-into-the-runs-checkpoints", ["compare", "{run}", "--out", "{run}/checkpoints"],
     r"is the run's own checkpoints folder", ["run"]),
    ("folders", "compare-over-a-folder-of-user-files", ["compare", "{run}", "--out", "{user}"],
     r"already holds files srr did not write there \(notes.txt, sub/\)", ["user"]),
    ("folders", "denoise-over-a-folder-of-user-files", [*DENOISE, "--out", "{user}"],
     r"already holds files srr did not write there", ["user"]),
    ("folders", "sparse-coding-over-a-folder-of-user-files", [*SPARSE, "--out", "{user}"],
     r"already holds files srr did not write there", ["user"]),
    ("folders", "ansatz-over-a-folder-of-user-files", ["ansatz", "{run}", "--samples", "8", "--no-progress",
                                                       "--out", "{user}"],
     r"already holds files srr did not write there", ["user", "run"]),
    ("folders", "evaluate-over-an-analysis-folder-with-a-user-file", ["evaluate", "{run}", "--out", "{mixed}"],
     r"already holds files srr did not write there \(mine.md\)", ["mixed"]),
    ("folders", "evaluate-out-empty", ["evaluate", "{run}", "--out", ""],
     r"--out must name a folder or file, got an empty string", ["run"]),
    ("folders", "compare-out-empty", ["compare", "{run}", "--out", ""], r"--out must name", ["run"]),
    ("folders", "denoise-out-empty", [*DENOISE, "--out", ""], r"--out must name", []),
    ("folders", "denoise-out-the-working-directory", [*DENOISE, "--out", "."], r"--out \. is the working directory",
     []),
    ("folders", "compare-out-a-parent-of-the-working-directory", ["compare", "{run}", "--out", ".."],
     r"--out \.\. is the working directory or one of its parents", ["run"]),
    ("folders", "convert-dest-empty", ["convert", "{ckpt}", ""], r"DEST must name", ["ckpt"]),
    ("folders", "convert-into-a-folder-with-a-readme", ["convert", "{ckpt}", "{user_readme}", "--set", "heads=2"],
     r"already holds files srr did not write there \(README.md\)", ["user_readme", "ckpt"]),
    ("folders", "export-over-a-user-file", ["export", "{run}", "--out", "{user}/notes.txt"],
     r"exists and was not written by srr", ["user"]),
    ("folders", "export-over-the-runs-readme", ["export", "{run}", "--out", "{run}/README.md"],
     r"exists and was not written by srr", ["run"]),
    ("folders", "export-over-the-runs-curves", ["export", "{run}", "--out", "{run}/curves.png"],
     r"exists and was not written by srr", ["run"]),
    ("folders", "export-into-the-runs-checkpoints", ["export", "{run}", "--out", "{run}/checkpoints/m.onnx"],
     r"lies inside the run's own checkpoints folder", ["run"]),
    ("folders", "export-over-the-latest-checkpoint", ["export", "{run}", "--out", "{run}/checkpoints/latest"],
     r"lies inside the run's own checkpoints folder", ["run"]),
    ("folders", "export-over-an-image", ["export", "{run}", "--out", "{image}"], r"exists and was not written by srr",
     ["image"]),
    # 3. values — refused where they enter, naming the value
    ("values", "evaluate-seed-1e23", ["evaluate", "crate_nano", "--seed", "100000000000000000000000", "--out", "{out}"],
     r"--seed must lie in \[0, \d+\], got 100000000000000000000000", []),
    ("values", "ansatz-seed-1e23", ["ansatz", "{run}", "--seed", "100000000000000000000000", "--out", "{out}"],
     r"--seed must lie in", ["run"]),
    ("values", "evaluate-seed-ignored-for-a-run", ["evaluate", "{run}", "--seed", "3", "--out", "{out}"],
     r"--seed initialises a model built from a name; .* holds trained weights", ["run"]),
    ("values", "attention-seed-ignored-for-a-run", ["attention", "{run}", "--seed", "3", "--out", "{out}"],
     r"--seed initialises a model built from a name; .* holds trained weights", ["run"]),
    ("values", "evaluate-max-tokens-ignored-for-images", ["evaluate", "{run}", "--max-tokens", "5", "--out", "{out}"],
     r"--max-tokens applies to language models", ["run"]),
    ("values", "convert-which-ignored-for-crate", ["convert", "{ckpt}", "{out}", "--which", "student"],
     r"--which chooses the network of a SimDINO checkpoint", ["ckpt"]),
    ("values", "convert-heads-text", ["convert", "{ckpt}", "{out}", "--set", "heads=abc"],
     r"heads must be an integer, got 'abc'", ["ckpt"]),
    ("values", "convert-channels-0", ["convert", "{ckpt}", "{out}", "--set", "channels=0"],
     r"channels must lie in \[1, 4096\], got 0", ["ckpt"]),
    ("values", "convert-channels-negative", ["convert", "{ckpt}", "{out}", "--set", "channels=-3"],
     r"channels must lie in \[1, 4096\], got -3", ["ckpt"]),
    ("values", "predict-resize-text", ["predict", "{pre_resize_text}", "{image}"],
     r"preprocessing.resize must be an integer, got 'x'", []),
    ("values", "predict-image-size-text", ["predict", "{pre_size_text}", "{image}"],
     r"preprocessing.image_size must be an integer, got 'abc'", []),
    ("values", "predict-image-size-fraction", ["predict", "{pre_size_frac}", "{image}"],
     r"preprocessing.image_size must be an integer, got 8.5", []),
    ("values", "predict-channels-a-bool", ["predict", "{pre_bool}", "{image}"],
     r"preprocessing.channels must be an integer, got True", []),
    ("values", "predict-resize-negative", ["predict", "{pre_resize_neg}", "{image}"],
     r"preprocessing.resize must lie in \[0, 16384\], got -4", []),
    ("values", "evaluate-max-tokens-below-one-window", ["evaluate", "{lm}", "--max-tokens", "10", "--out", "{out}"],
     r"--max-tokens 10 is less than one window of 16 tokens", ["lm"]),
    ("values", "compare-run-json-train-a-list", ["compare", "{run}", "{run_train_list}", "--out", "{out}"],
     r"run.json: train is a list, not an object of settings", []),
    ("values", "compare-run-json-a-list", ["compare", "{run}", "{run_json_list}", "--out", "{out}"],
     r"run.json holds a list, not an object", []),
    ("values", "denoise-sigma-1e-300", [*DENOISE, "--sigma-min", "1e-300", "--out", "{out}"],
     r"--sigma-min must lie in \[0.0001, 1000\], got 1e-300", []),
    ("values", "denoise-sampler-sigma-1e-300", [*DENOISE, "--sampler-sigma-min", "1e-300", "--out", "{out}"],
     r"--sampler-sigma-min must lie in \[0.0001, 1000\], got 1e-300", []),
    # 4. silent wrong answers
    ("wrong", "predict-nan-mean", ["predict", "{pre_nan_mean}", "{image}"],
     r"preprocessing.mean must be a finite number, got nan", []),
    ("wrong", "predict-inf-std", ["predict", "{pre_inf_std}", "{image}"],
     r"preprocessing.std must be a finite number, got inf", []),
    ("wrong", "predict-huge-mean", ["predict", "{pre_huge_mean}", "{image}"],
     r"preprocessing.mean must lie in \[-1e\+12, 1e\+12\], got 1e\+308", []),
    ("wrong", "convert-int64-weights", ["convert", "{ckpt_int}", "{out}", "--set", "heads=2"],
     r"mlp_head.1.weight is stored as torch.int64, not as floating point; refusing to cast it", ["ckpt_int"]),
    ("wrong", "convert-bool-weights", ["convert", "{ckpt_bool}", "{out}", "--set", "heads=2"],
     r"is stored as torch.bool, not as floating point", ["ckpt_bool"]),
    ("wrong", "compare-nan-accuracy", ["compare", "{run}", "{run_nan}", "--out", "{out}"],
     r"summary.json: test_accuracy is nan, not a finite number", ["run_nan"]),
    ("wrong", "compare-seconds-text", ["compare", "{run}", "{run_text_seconds}", "--out", "{out}"],
     r"summary.json: seconds is 'abc', not a finite non-negative number", []),
    ("wrong", "compare-negative-parameters", ["compare", "{run}", "{run_negative}", "--out", "{out}"],
     r"summary.json: parameters is -5, not a finite non-negative number", []),
    ("values", "ansatz-100000-alphas", ["ansatz", "{run}", "--alphas", ",".join(["0.5"] * 100000), "--out", "{out}"],
     r"--alphas needs 1 to 64 powers, got 100000", ["run"]),
    ("values", "ansatz-recorded-seed-1e23", ["ansatz", "{run_seed_huge}", "--samples", "8", "--no-progress", "--out",
                                             "{out}"], r"run.json: train.seed must lie in \[0, \d+\]", []),
    # 2. reads that never end: a named pipe or a device where a file goes (each hung until killed)
    ("resources", "predict-a-named-pipe", ["predict", "{run}", "{fifo}"],
     r"fifo.png is a named pipe; srr reads regular files only", ["run"]),
    ("resources", "predict-a-device", ["predict", "{run}", "/dev/zero"], r"/dev/zero is a device", ["run"]),
    ("resources", "evaluate-text-from-a-named-pipe", ["evaluate", "{lm}", "--data", "text:{fifo}", "--out", "{out}"],
     r"is a named pipe", ["lm"]),
    ("resources", "evaluate-text-from-a-device", ["evaluate", "{lm}", "--data", "text:/dev/zero", "--out", "{out}"],
     r"/dev/zero is a device", ["lm"]),
    ("resources", "evaluate-config-json-a-named-pipe", ["evaluate", "{fifo_config}", "--out", "{out}"],
     r"config.json is a named pipe", []),
    ("resources", "compare-metrics-a-named-pipe", ["compare", "{run_fifo_metrics}", "--out", "{out}"],
     r"metrics.jsonl is a named pipe", []),
    # 5. foreign exceptions and allocations turned into one line
    ("one-line", "convert-no-layers", ["convert", "{ckpt_no_layers}", "{out}", "--set", "heads=2"],
     r"does not have the structure of a crate checkpoint: ValueError", []),
    ("one-line", "convert-1d-positions", ["convert", "{ckpt_pos_1d}", "{out}", "--set", "heads=2"],
     r"does not have the structure of a crate checkpoint: IndexError", []),
    ("one-line", "convert-layer-not-numbered", ["convert", "{ckpt_layer_x}", "{out}", "--set", "heads=2"],
     r"does not have the structure of a crate checkpoint: ValueError: invalid literal", []),
    ("one-line", "convert-state-dict-an-int", ["convert", "{ckpt_sd_int}", "{out}"],
     r"does not have the structure of a known checkpoint: TypeError", []),
    ("one-line", "convert-flax-kernel-3d", ["convert", "{flax_3d}", "{out}"],
     r"does not have the structure of a crate_alpha checkpoint: ValueError", []),
    ("one-line", "predict-image-size-0", ["predict", "{pre_size_0}", "{image}"],
     r"preprocessing.image_size must lie in \[1, 32768\], got 0", []),
    ("one-line", "predict-resize-1e5", ["predict", "{pre_resize_huge}", "{image}"],
     r"preprocessing.resize must lie in \[0, 16384\], got 100000", []),
    ("one-line", "evaluate-resize-1e5", ["evaluate", "{pre_resize_huge}", "--out", "{out}"],
     r"preprocessing.resize must lie in \[0, 16384\], got 100000", []),
    ("one-line", "compare-summary-a-list", ["compare", "{run}", "{run_summary_list}", "--out", "{out}"],
     r"summary.json holds a list, not an object of figures", []),
]


def _digest(path) -> str:
    """Every file below ``path`` (names and bytes), hidden lock files aside: what must not change."""
    h = hashlib.sha256()
    items = sorted(p for p in path.rglob("*") if p.name != ".srr.lock") if path.is_dir() else [path]
    for p in items:
        h.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _copy_run(src, dst, change=None):
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".srr.lock", "checkpoints"))
    if change is not None:
        change(dst)
    return dst


def _edit_json(name, change):
    def edit(folder):
        path = folder / name
        value = json.loads(path.read_text()) if path.is_file() else None
        value = change(value)
        path.write_text(json.dumps(value))
    return edit


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("newer")
    f = {"run": root / "run"}
    assert main(["train", "--model", "crate_nano", "--data", "digits", "--set", "dim=16", "--set", "depth=1",
                 "--set", "heads=2", "--epochs", "1", "--checkpoint-every", "5", "--no-progress", "--no-tensorboard",
                 "--out", str(f["run"])]) == 0
    assert (f["run"] / "checkpoints" / "latest").exists()
    f["lm"] = root / "lm"
    text = root / "corpus.txt"
    text.write_text("the cat sat on the mat\n" * 400)
    assert main(["train", "--model", "crate_gpt_nano", "--data", f"text:{text}", "--set", "dim=16", "--set", "depth=1",
                 "--set", "heads=2", "--set", "context=16", "--steps", "2", "--batch-size", "4", "--no-progress",
                 "--no-tensorboard", "--out", str(f["lm"])]) == 0
    f["user"] = root / "user"
    (f["user"] / "sub").mkdir(parents=True)
    (f["user"] / "notes.txt").write_text("my notes")
    f["user_readme"] = root / "user_readme"
    f["user_readme"].mkdir()
    (f["user_readme"] / "README.md").write_text("# my project")
    f["mixed"] = root / "mixed"
    f["mixed"].mkdir()
    (f["mixed"] / "evaluation.json").write_text("{}")
    (f["mixed"] / "mine.md").write_text("mine")
    f["image"] = root / "digit.png"
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(f["image"])
    # saved models whose config.json records a hostile preprocessing
    saved = root / "saved"
    srr.from_pretrained(f["run"]).save_pretrained(saved, extra=json.loads((f["run"] / "config.json").read_text()))
    config = json.loads((saved / "config.json").read_text())
    for name, change in {"pre_nan_mean": {"mean": [float("nan")]}, "pre_inf_std": {"std": [float("inf")]},
                         "pre_huge_mean": {"mean": [1e308]}, "pre_size_0": {"image_size": [0, 0]},
                         "pre_size_text": {"image_size": "abc"}, "pre_size_frac": {"image_size": [8.5, 8.5]},
                         "pre_bool": {"channels": True}, "pre_resize_huge": {"resize": 100000},
                         "pre_resize_neg": {"resize": -4}, "pre_resize_text": {"resize": "x"}}.items():
        folder = root / name
        folder.mkdir()
        (folder / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
        (folder / "config.json").write_text(json.dumps({**config, "preprocessing": {**config["preprocessing"],
                                                                                    **change}}))
        f[name] = folder
    # run folders whose summary.json, run.json or metrics.jsonl lie
    for name, change in {
            "run_nan": _edit_json("summary.json", lambda s: {**s, "test_accuracy": float("nan")}),
            "run_text_seconds": _edit_json("summary.json", lambda s: {**s, "seconds": "abc"}),
            "run_negative": _edit_json("summary.json", lambda s: {**s, "parameters": -5}),
            "run_summary_list": _edit_json("summary.json", lambda s: [1, 2]),
            "run_json_list": _edit_json("run.json", lambda s: []),
            "run_train_list": _edit_json("run.json", lambda s: {**s, "train": [1, 2]})}.items():
        f[name] = _copy_run(f["run"], root / name, change)
    f["run_seed_huge"] = _copy_run(f["run"], root / "run_seed_huge", _edit_json(
        "run.json", lambda r: {**r, "train": {**r["train"], "seed": 1e23}}))
    f["fifo"] = root / "fifo.png"
    os.mkfifo(f["fifo"])
    f["fifo_config"] = root / "fifo_config"
    f["fifo_config"].mkdir()
    (f["fifo_config"] / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    os.mkfifo(f["fifo_config"] / "config.json")
    f["run_fifo_metrics"] = _copy_run(f["run"], root / "run_fifo_metrics", lambda d: (
        (d / "metrics.jsonl").unlink(), os.mkfifo(d / "metrics.jsonl")))
    # the authors' CRATE checkpoint format (srr's key names), and damaged variants
    torch.manual_seed(0)
    crate = srr.create_model("crate_tiny", dim=16, depth=1, heads=2, image_size=8, patch_size=4, num_classes=3,
                             pool="cls", channels=3)
    sd = {k: v.clone() for k, v in crate.state_dict().items()}
    variants = {"ckpt": sd, "ckpt_int": {**sd, "mlp_head.1.weight": sd["mlp_head.1.weight"].long()},
                "ckpt_bool": {**sd, "mlp_head.1.weight": sd["mlp_head.1.weight"] > 0},
                "ckpt_no_layers": {k: v for k, v in sd.items() if not k.startswith("transformer.layers.")},
                "ckpt_pos_1d": {**sd, "pos_embedding": torch.zeros(16)},
                "ckpt_layer_x": {**sd, "transformer.layers.x.0.norm.weight": torch.zeros(3)}}
    for name, state in variants.items():
        f[name] = root / f"{name}.pth.tar"
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, f[name])
    f["ckpt_sd_int"] = root / "sd_int.pth.tar"
    torch.save({"state_dict": 5}, f["ckpt_sd_int"])
    f["flax_3d"] = root / "flax3d.npz"
    np.savez(f["flax_3d"], **{"embedding/kernel": np.zeros((2, 2, 4), np.float32),
                              "pos_embedding": np.zeros((1, 5, 4), np.float32)})
    return f


@pytest.mark.parametrize("kind,case,argv,pattern,keep", CASES, ids=[c[1] for c in CASES])
def test_refused_with_one_line_and_nothing_touched(kind, case, argv, pattern, keep, files, tmp_path, capsys):
    out = tmp_path / "out"
    before = {k: _digest(files[k]) for k in keep}
    argv = [a.format(out=out, **{k: str(v) for k, v in files.items()}) for a in argv]
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    tried(f"newer_{kind}")
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), f"{lines[0]!r} does not match {pattern!r}"
    assert not [w for w in caught if "srr" not in str(w.filename)], [str(w.message) for w in caught]
    assert not out.exists() or not any(out.iterdir())
    assert {k: _digest(files[k]) for k in keep} == before, "a file it must not touch changed"


def test_the_catalogue_has_several_cases_in_every_class():
    counts = {k: sum(1 for c in CASES if c[0] == k) for k in ("folders", "resources", "values", "wrong", "one-line")}
    assert counts["folders"] >= 15 and counts["values"] >= 15 and counts["wrong"] >= 8 and counts["one-line"] >= 8, \
        counts
    assert counts["resources"] >= 6, counts
    assert len({c[1] for c in CASES}) == len(CASES)


def test_an_output_of_srr_is_replaced_and_the_listing_hides_the_marker(files, tmp_path, capsys):
    """The marker makes srr's own output folder replaceable (running a command twice), and an older output folder
    without it that holds only analysis files is still srr's; the command lists only the files it wrote."""
    out = tmp_path / "evaluation"
    for _ in range(2):
        assert main(["evaluate", str(files["run"]), "--out", str(out)]) == 0
        printed = capsys.readouterr().out.strip().splitlines()[-1]
        assert printed == f"wrote {out / 'confusion.png'}, {out / 'evaluation.json'}"
    assert sorted(p.name for p in out.iterdir()) == [".srr-output", "confusion.png", "evaluation.json"]
    (out / ".srr-output").unlink()  # as an older srr left it
    first = json.loads((out / "evaluation.json").read_text())
    assert main(["evaluate", str(files["run"]), "--out", str(out)]) == 0
    assert json.loads((out / "evaluation.json").read_text())["accuracy"] == first["accuracy"]
    # the published evaluation agrees with the confusion matrix it holds
    c = np.array(first["confusion"])
    assert first["accuracy"] == pytest.approx(np.trace(c) / c.sum())


def test_an_empty_existing_folder_is_used(files, tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["compare", str(files["run"]), "--out", str(out)]) == 0
    assert {"compare.json", "compare.md", "compare.png"} <= {p.name for p in out.iterdir()}


def test_export_replaces_its_own_earlier_export_only(files, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    target = tmp_path / "m.onnx"
    model = srr.from_pretrained(files["run"])
    first = export_model(model, target)
    assert first["max_abs_diff"] < 1e-4
    export_model(model, target)  # its own earlier export: replaced
    target.write_bytes(b"\x08\x07 not an onnx model")
    with pytest.raises(RunFolderError, match="exists and was not written by srr"):
        export_model(model, target)
    assert target.read_bytes() == b"\x08\x07 not an onnx model"


def test_convert_publishes_the_folder_whole(files, tmp_path, capsys):
    dest = tmp_path / "converted"
    assert main(["convert", str(files["ckpt"]), str(dest), "--set", "heads=2"]) == 0
    assert sorted(p.name for p in dest.iterdir()) == [".srr-output", "README.md", "config.json", "model.safetensors"]
    model = srr.from_pretrained(dest)
    sd = torch.load(files["ckpt"], weights_only=True)["state_dict"]
    assert torch.equal(model.state_dict()["mlp_head.1.weight"], sd["module.mlp_head.1.weight"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".srr-")]  # no leftover


def test_compare_skips_metrics_records_it_cannot_place(files, tmp_path):
    run = _copy_run(files["run"], tmp_path / "odd_metrics")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join([
        '{"epoch": {"a": 1}, "train_loss": 2}', '{"epoch": "x", "train_loss": 1}', '{"epoch": 1e308, "train_loss": 1}',
        '[1]', *lines]) + "\n")
    runs = [srr.analysis.read_run(run)]
    assert len(runs[0]["history"]) == len(lines)
    table = compare_runs([run], tmp_path / "cmp")
    assert table["rows"][0]["run"] == "odd_metrics"


def test_predict_refuses_non_finite_logits(files, monkeypatch):
    from srr.analysis import open_source, predict

    src = open_source(str(files["run"]))
    monkeypatch.setattr(src.model, "forward", lambda x: torch.full((len(x), 10), float("nan")))
    with pytest.raises(DataError, match="non-finite logits on .*digit.png"):
        predict(src, [files["image"]], 3)


def test_load_images_checks_a_preprocessing_given_in_python(files):
    good = {"image_size": 8, "channels": 1, "mean": [0.5], "std": [0.25]}
    x = load_images([files["image"]], good)
    expected = (np.arange(64).reshape(8, 8) * 4 / 255.0 - 0.5) / 0.25
    np.testing.assert_allclose(x[0, 0].numpy(), expected, rtol=0, atol=1e-5)
    with pytest.raises(CheckpointError, match=r"preprocessing.std must lie in \[1e-06, 1e\+12\], got 0"):
        load_images([files["image"]], {**good, "std": [0.0]})
    with pytest.raises(CheckpointError, match=r"preprocessing.mean must list one number per channel \(1\)"):
        load_images([files["image"]], {**good, "mean": [0.5, 0.5]})
    with pytest.raises(CheckpointError, match=r"preprocessing lacks std \(needs image_size, channels, mean and std\)"):
        load_images([files["image"]], {k: v for k, v in good.items() if k != "std"})
    # reading a saved model checks only what it records (a ReduNet on vectors records mean and std alone)
    from srr.models.hub import check_preprocessing
    assert check_preprocessing({"mean": [0.1], "std": [2.0]}, complete=False) == {"mean": [0.1], "std": [2.0]}


# ---- the Python API behind the commands: (class, id, call, error, pattern)

g = torch.Generator().manual_seed(0)
MIX = low_rank_mixture(2, 4, 1, 0)
Y = torch.randn(5, 4, generator=g)
D = torch.randn(4, 8, generator=g)
X = torch.randn(5, 4, generator=g)
NAN = float("nan")

_TMP = __import__("pathlib").Path(__import__("tempfile").mkdtemp(prefix="srr-newer-"))


def _run_model():
    return srr.create_model("crate_nano", dim=16, depth=1, heads=2, image_size=8, patch_size=2, channels=1)


def _digits():
    from srr.data import load_data

    return load_data("digits")


def _lm_model():
    return srr.create_model("crate_gpt_nano", dim=16, depth=1, heads=2, context=16)


def _text():
    from srr.data import load_data

    text = _TMP / "corpus.txt"
    text.write_text("the cat sat on the mat\n" * 100)
    return load_data(f"text:{text}", task="lm")


def _nan_model():
    model = srr.create_model("crate_nano", dim=16, depth=1, heads=2)
    with torch.no_grad():
        model.cls_token.view(-1)[0] = NAN
    return model


API = [
    ("values", "posterior-sigma-0", lambda: posterior_mean(Y, MIX, 0.0), ConfigError, r"sigma must lie in \[1e-08"),
    ("values", "oracle-labels-out-of-range", lambda: oracle_mean(Y, torch.tensor([0, 1, 5, 0, 0]), MIX, 1.0),
     ConfigError, r"label 5 is out of range for 2 classes"),
    ("values", "oracle-labels-float", lambda: oracle_mean(Y, torch.tensor([0., 1, 1, 0, 0]), MIX, 1.0), ConfigError,
     r"labels must be integers"),
    ("values", "oracle-labels-count", lambda: oracle_mean(Y, torch.tensor([0, 1]), MIX, 1.0), ConfigError,
     r"2 labels for 5 samples"),
    ("values", "ista-z0-shape", lambda: ista(X, D, 0.1, 5, z0=torch.zeros(2, 2)), ConfigError,
     r"z0 must be codes of shape \(5, 8\), got \(2, 2\)"),
    ("values", "lasso-objective-codes-shape", lambda: lasso_objective(X, D, torch.zeros(5, 3), 0.1), ConfigError,
     r"z must be codes of shape \(5, 8\)"),
    ("values", "laplace-bandwidth-0", lambda: laplace_kernel(X, X, torch.eye(4), 0.0), ConfigError,
     r"bandwidth must lie in \(0, 1e\+12\], got 0"),
    ("values", "whitened-frame-shapes", lambda: whitened_frame(torch.eye(4), torch.randn(3, 5)), ConfigError,
     r"G \(d, d\) and W \(d, k\) are needed"),
    ("values", "whitened-frame-rtol-negative", lambda: whitened_frame(torch.eye(4), torch.eye(4), rtol=-1),
     ConfigError, r"rtol must lie in \(0, 1\]"),
    ("values", "mse-curves-tokens-0", lambda: mse_curves(MIX, [1.0], 8, 0), ConfigError, r"tokens must lie in"),
    ("values", "network-denoisers-tokens-0", lambda: network_denoisers(Y, MIX, 0), ConfigError, r"tokens must lie in"),
    ("values", "rfm-targets-count", lambda: rfm(X, torch.randn(3, 1), iterations=1), DataError,
     r"5 inputs but 3 targets"),
    ("values", "convert-which-unknown", lambda: convert("x.pth", "y", which="pupil"), ConfigError,
     r"--which must be one of teacher, student"),
    ("values", "convert-kind-unknown", lambda: convert("x.pth", "y", kind="resnet"), ConfigError,
     r"checkpoint kind must be one of crate, crate_alpha, tost, simdino"),
    ("wrong", "posterior-sigma-1e-300", lambda: posterior_mean(Y, MIX, 1e-300), ConfigError,
     r"sigma must lie in \[1e-08, 1e\+06\], got 1e-300"),
    ("wrong", "reverse-sample-sigma-min-1e-300", lambda: reverse_sample(MIX, 4, sigma_min=1e-300, steps=3),
     ConfigError, r"sigma_min must lie in \[1e-08"),
    ("wrong", "nearest-subspace-nan", lambda: nearest_subspace(torch.full((2, 4), NAN), MIX), NonFiniteError,
     r"x contains 8 non-finite"),
    ("wrong", "ista-step-diverges", lambda: ista(X, D, 0.1, 50, step=1e6), NonFiniteError,
     r"ISTA diverged to non-finite codes with step 1e\+06; the step must stay below 2/L"),
    ("wrong", "fista-step-diverges", lambda: fista(X, D, 0.1, 50, step=1e6), NonFiniteError, r"FISTA diverged"),
    ("wrong", "lasso-objective-nan-codes", lambda: lasso_objective(X, D, torch.full((5, 8), NAN), 0.1),
     NonFiniteError, r"z contains 40 non-finite"),
    ("wrong", "laplace-bandwidth-nan", lambda: laplace_kernel(X, X, torch.eye(4), NAN), ConfigError,
     r"bandwidth must be a finite number"),
    ("wrong", "whitened-frame-nan", lambda: whitened_frame(torch.full((4, 4), NAN), torch.eye(4)), NonFiniteError,
     r"G contains 16 non-finite"),
    ("wrong", "save-pretrained-nan-weights", lambda: _nan_model().save_pretrained(_TMP / "nan"), NonFiniteError,
     r"crate_nano: cls_token holds 1 non-finite value\(s\) \(NaN or inf\); refusing to save"),
    ("wrong", "push-to-hub-nan-weights", lambda: _nan_model().push_to_hub("me/nan"), NonFiniteError,
     r"cls_token holds 1 non-finite value\(s\)"),
    ("wrong", "save-pretrained-nan-mean", lambda: srr.create_model("crate_nano", dim=16, depth=1, heads=2)
     .save_pretrained(_TMP / "nan_mean", extra={"preprocessing": {"mean": [NAN], "std": [1.0]}}), CheckpointError,
     r"preprocessing.mean must be a finite number, got nan"),
    ("one-line", "lipschitz-nan", lambda: lipschitz(torch.full((4, 8), NAN)), NonFiniteError,
     r"D contains 32 non-finite"),
    ("one-line", "lipschitz-1d", lambda: lipschitz(torch.ones(4)), ConfigError, r"a dictionary D \(d, m\) is needed"),
    ("one-line", "network-denoisers-wrong-width", lambda: network_denoisers(torch.randn(4, 3), MIX, 2), ConfigError,
     r"y must be \(n, 4\), got \(4, 3\)"),
    ("one-line", "nearest-subspace-wrong-width", lambda: nearest_subspace(torch.randn(2, 5), MIX), ConfigError,
     r"x must be \(n, 4\), got \(2, 5\)"),
    ("one-line", "mse-curves-samples-text", lambda: mse_curves(MIX, [1.0], "8", 4), ConfigError,
     r"samples must be an integer"),
    ("one-line", "compare-nothing", lambda: compare_runs([]), ConfigError, r"a list of one or more run folders"),
    ("values", "compare-a-string", lambda: compare_runs("runs/a"), ConfigError, r"a list of one or more run folders"),
    ("values", "evaluate-split-unknown", lambda: evaluate_images(_run_model(), _digits(), split="val"), ConfigError,
     r"split must be one of test, train; got 'val'"),
    ("values", "evaluate-resize-text", lambda: evaluate_images(_run_model(), _digits(), resize="8"), ConfigError,
     r"resize must be an integer, got '8'"),
    ("values", "export-example-batch-0", lambda: example_input(_run_model(), 0), ConfigError,
     r"export batch must lie in \[1, 4096\], got 0"),
    ("values", "convert-overrides-a-list", lambda: convert("x.pth", "y", overrides=[1, 2]), ConfigError,
     r"overrides must be a dict of model settings, got list"),
    ("one-line", "evaluate-resize-1e5", lambda: evaluate_images(_run_model(), _digits(), resize=100000), ConfigError,
     r"resize must lie in \[0, 16384\], got 100000"),
    ("one-line", "evaluate-text-batch-0", lambda: evaluate_text(_lm_model(), _text(), 0), ConfigError,
     r"batch size must lie in \[1, 1048576\], got 0"),
    ("resources", "rfm-num-classes-1e9", lambda: rfm(X, torch.arange(5) % 2, iterations=1, num_classes=10**9),
     ResourceError, r"one-hot targets of 5 samples x 1000000000 classes needs about"),
    ("wrong", "kernel-agop-bandwidth-0", lambda: kernel_agop(X, X, torch.randn(5, 2), torch.eye(4), 0.0),
     ConfigError, r"bandwidth must lie in \(0, 1e\+12\], got 0"),
    ("wrong", "layer-alignment-nan-inputs", lambda: layer_alignment(_run_model(), torch.full((2, 1, 8, 8), NAN)),
     NonFiniteError, r"x contains 128 non-finite"),
    ("values", "layer-alignment-no-alphas", lambda: layer_alignment(_run_model(), torch.randn(2, 1, 8, 8), alphas=()),
     ConfigError, r"alphas needs at least one power"),
    ("one-line", "rfm-test-targets-count", lambda: rfm(X, torch.arange(5) % 2, 1, x_test=X, y_test=torch.arange(3)),
     DataError, r"5 test inputs but 3 test targets"),
    ("one-line", "rfm-no-inputs", lambda: rfm(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 1), DataError,
     r"rfm needs one or more inputs"),
    ("one-line", "layer-alignment-batch-0", lambda: layer_alignment(_run_model(), torch.randn(2, 1, 8, 8),
                                                                    batch_size=0), ConfigError,
     r"batch_size must lie in \[1, 1048576\], got 0"),
    ("one-line", "load-images-no-file", lambda: load_images([], {}), ConfigError,
     r"load_images needs a list of one or more image files"),
    ("one-line", "predict-one-string", lambda: load_images("digit.png", {}), ConfigError,
     r"load_images needs a list of one or more image files"),
]


def test_api_catalogue_covers_every_class():
    assert len({c[1] for c in API}) == len(API)
    assert all(sum(c[0] == k for c in API) >= 5 for k in ("values", "wrong", "one-line"))
    assert {c[0] for c in API} == {"resources", "values", "wrong", "one-line"}


@pytest.mark.parametrize("kind,case,call,error,pattern", API, ids=[c[1] for c in API])
def test_api_refuses_with_one_line(kind, case, call, error, pattern):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SrrError) as info:
            call()
    assert not caught, [str(w.message) for w in caught]
    message = str(info.value)
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {message}"
    assert "\n" not in message and re.search(pattern, message), message
    tried(f"newer_api_{kind}")


def test_convert_sizes_an_npz_tree_before_inflating_it(tmp_path, monkeypatch, capsys):
    """A 0.1 MB npz whose one member inflates to 128 MiB (deflate at its limit, ~1030×) is refused from the zip
    directory and the .npy header when memory cannot hold it, before a byte is inflated (found: ``np.load`` inflated
    a 2 MB file to 2 GiB, an allocation traceback under ``ulimit -v``)."""
    import io
    import zipfile

    n = 32 << 20  # float32 zeros: 128 MiB
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (n,)})
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("embedding/kernel.npy", "w") as fh:
        fh.write(header.getvalue())
        for _ in range(8):
            fh.write(bytes(n * 4 // 8))
    assert bomb.stat().st_size < 1 << 20
    monkeypatch.setenv("SRR_MEMORY_LIMIT", str(64 << 20))
    capsys.readouterr()
    assert main(["convert", str(bomb), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    pattern = r"1 array\(s\) of 134,217,728 bytes .* needs about 256.0 MiB, more than"
    assert len(err) == 1 and re.search(pattern, err[0]), err
    assert not (tmp_path / "out").exists()
    tried("newer_resources")


def test_compare_accepts_nested_figures(files, tmp_path):
    """A ReduNet run records its accuracies as an object (per measure): not a number to check, and not an error
    (found while fixing: the first version of the summary check refused every ReduNet run)."""
    nested = {"output": {"nearest_subspace": 0.9, "knn": 0.8}}
    run = _copy_run(files["run"], tmp_path / "nested", _edit_json("summary.json",
                                                                 lambda s: {**s, "test_accuracy": nested}))
    table = compare_runs([files["run"], run])
    summary = json.loads((files["run"] / "summary.json").read_text())
    assert [r["test_accuracy"] for r in table["rows"]] == [summary["test_accuracy"], nested]
    assert f"| {summary['test_accuracy']:.4f} |" in table["markdown"]


def test_ctrl_c_while_the_parser_imports_is_one_line(monkeypatch, capsys):
    """A SIGINT 4 s after `python -m srr denoise` started landed while the parser imported the sub-commands and
    printed an 18-line KeyboardInterrupt traceback (found with real processes; before `import srr` finishes it
    still does, see RELIABILITY.md)."""
    import srr.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["denoise"]) == 130
    assert capsys.readouterr().err == "srr: interrupted\n"


def test_export_sizes_its_example_before_allocating(monkeypatch, tmp_path):
    """A saved model of 32,768-pixel images (admitted: its parameters fit) made `srr export` allocate 8 GiB for its
    example batch, an allocation traceback under `ulimit -v`; the example is now checked against memory first."""

    model = srr.create_model("crate_nano", dim=16, depth=1, heads=2, image_size=4096, patch_size=512, channels=1,
                             num_classes=3)
    monkeypatch.setenv("SRR_MEMORY_LIMIT", str(256 << 20))
    with pytest.raises(ResourceError, match=r"an export example of 2 image\(s\) of 1 x 4096 x 4096 \(--batch\) needs "
                                            r"about 1.0 GiB, more than"):
        export_model(model, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())
    tried("newer_resources")


def test_save_pretrained_takes_a_side_as_the_image_size(tmp_path):
    """A preprocessing whose image_size is one side (as predict and check_preprocessing accept) raised a TypeError in
    the model card; the card now reads it as a square, and the saved record loads."""
    model = srr.create_model("crate_nano", dim=16, depth=1, heads=2)
    pre = {"image_size": 8, "channels": 1, "mean": [0.5], "std": [0.25]}
    model.save_pretrained(tmp_path / "m", extra={"preprocessing": pre})
    assert "Preprocessing: images of 8x8 pixels, 1 channel(s)" in (tmp_path / "m" / "README.md").read_text()
    assert srr.models.read_config(tmp_path / "m")["preprocessing"] == pre


def test_ansatz_sizes_its_images_before_loading_them(files, tmp_path, monkeypatch):
    """`--samples` is clamped to the split, whose images were then loaded at once, unchecked (a million 224-pixel
    images are 600 GB); the images are now sized from one of them first."""
    from srr.analysis import open_source
    from srr.analysis.ansatz import ansatz_report

    class Huge:
        def __len__(self):
            return 10**6

        def __getitems__(self, idx):
            if len(idx) > 1:
                raise AssertionError("loaded before the memory check")
            return torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long)

    data = type("Data", (), {"train_set": Huge(), "spec": "huge"})()
    src = open_source(str(files["run"]))
    monkeypatch.setenv("SRR_MEMORY_LIMIT", str(64 << 20))
    with pytest.raises(ResourceError, match=r"1000000 training images of \(1, 8, 8\) for the AGOP \(--samples\) "
                                            r"needs about 488.3 MiB"):
        ansatz_report(src, data, tmp_path / "out", samples=10**6)
    assert not (tmp_path / "out").exists()


def test_every_published_file_name_is_known_as_an_analysis_file():
    """An output folder of an older srr (without the marker) is replaceable when it holds only files named as srr's
    analyses name theirs (`runfolder.ANALYSIS_FILES`): every name a pipeline writes into a published folder must be
    listed, or re-running that analysis over an older output would be refused."""
    from paths import ROOT

    from srr.runfolder import ANALYSIS_FILES

    written = set()
    for path in (ROOT / "src" / "srr").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "publish_folder(" in text and "def publish_folder" not in text:
            written |= set(re.findall(r'tmp / "([^"/]+\.(?:json|png|md))"', text))
    assert len(written) >= 20, written
    assert written - set(ANALYSIS_FILES) <= {"README.md", "config.json"}, written - set(ANALYSIS_FILES)
