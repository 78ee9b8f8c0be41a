"""The hostile tester's examples that go through the command line and files, grouped by class, each with further cases
of the same class (issue: reliability, classes 3-5; class 1 is test_run_folders.py, class 2 test_resource_bombs.py
and test_data_bombs.py, the Python API's cases test_api_inputs.py):

3. values that were not validated — refused where they enter (flag, --set, recipe, config.json), naming the value;
4. silent wrong answers — non-finite or ill-typed weights and data refused, never turned into a plausible number;
5. errors that were not one line — no warning before the error, no foreign exception, one line on stderr.

Every case checks exit status 2, one stderr line matching its pattern, no traceback, no warning, and nothing written
to the output folder.
"""
import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import srr
from srr.cli import main
from reliability_counts import tried

TRAIN = ["train", "--epochs", "1", "--no-progress", "--out", "{out}"]
LM = ["train", "--model", "crate_gpt_nano", "--data", "text:{text}", "--set", "dim=32", "--set", "depth=1",
      "--set", "heads=2", "--steps", "2", "--no-progress", "--out", "{out}"]

CASES = [
    # 3. values not validated — the tester's examples
    ("values", "dropout-nan", [*TRAIN, "--set", "dropout=nan"], r"crate_nano: dropout must be a finite number, got nan"),
    ("values", "dropout-5", [*TRAIN, "--set", "dropout=5.0"], r"crate_nano: dropout must lie in \[0, 1\), got 5"),
    ("values", "dropout-in-a-recipe", [*TRAIN, "--recipe", "{dropout_recipe}"], r"dropout must lie in \[0, 1\), got 5"),
    ("values", "heads-0", [*TRAIN, "--set", "heads=0"], r"heads must lie in \[1, 65536\], got 0"),
    ("values", "dim-head-negative", [*TRAIN, "--set", "dim_head=-4"], r"dim_head must lie in \[1, 65536\], got -4"),
    ("values", "dim-head-text", [*TRAIN, "--set", "dim_head=abc"], r"dim_head must be an integer, got 'abc'"),
    ("values", "lambd-inf", [*TRAIN, "--set", "lambd=inf"], r"lambd must be a finite number, got inf"),
    ("values", "weight-decay-negative-images", [*TRAIN, "--weight-decay", "-5"],
     r"--weight-decay must lie in \[0, 100\], got -5"),
    ("values", "weight-decay-negative-lm", [*LM, "--weight-decay", "-5"], r"--weight-decay must lie in \[0, 100\], got -5"),
    ("values", "config-json-nested", ["analyze", "{nested_json}"], r"config.json is nested too deeply"),
    ("values", "recipe-nested", [*TRAIN, "--recipe", "{nested_toml}"], r"nested too deeply|not valid TOML"),
    ("values", "recipe-model-a-list", [*TRAIN, "--recipe", "{list_recipe}"], r"model must be a string, got \['crate_nano'\]"),
    ("values", "seed-1e23", [*TRAIN, "--seed", "100000000000000000000000"],
     r"--seed must lie in \[0, 9223372036854775807\], got 100000000000000000000000"),
    ("values", "analyze-eps-1e-300", ["analyze", "crate_nano", "--eps", "1e-300", "--out", "{out}"],
     r"--eps = 1e-300 is out of range"),
    ("values", "analyze-eps-1e300", ["analyze", "crate_nano", "--eps", "1e300", "--out", "{out}"],
     r"--eps = 1e\+300 is out of range"),
    ("values", "npz-0-dimensional", [*TRAIN, "--data", "npz:{npz_0d}"], r"x_train.* has shape \(\)"),
    # 3. further cases of the class
    ("values", "pool-unknown", [*TRAIN, "--set", "pool=max"], r"pool must be one of cls, mean; got 'max'"),
    ("values", "patch-of-three-numbers", [*TRAIN, "--set", "patch_size=[2,2,2]"], r"an integer or a pair \[h, w\]"),
    ("values", "num-classes-3.7", [*TRAIN, "--set", "num_classes=3.7"], r"num_classes must be an integer, got 3.7"),
    ("values", "lr-inf", [*TRAIN, "--lr", "inf"], r"--lr must be a finite number, got inf"),
    ("values", "beta2-one", [*TRAIN, "--beta2", "1.0"], r"--beta2 must lie in \[0, 1\), got 1"),
    ("values", "label-smoothing-nan", [*TRAIN, "--label-smoothing", "nan"], r"--label-smoothing must be a finite"),
    ("values", "recipe-lr-a-bool", [*TRAIN, "--recipe", "{bool_recipe}"], r"lr must be a number, got True"),
    ("values", "config-json-args-a-list", ["analyze", "{args_list}"], r"does not describe a model"),
    ("values", "image-size-negative", [*TRAIN, "--set", "image_size=-8"], r"image_size must lie in \[1, 65536\]"),
    ("values", "layer-scale-text", [*TRAIN, "--model", "tost_nano", "--set", "layer_scale=big"],
     r"layer_scale must be a number, got 'big'"),
    ("values", "objective-setting-in-run-json", ["train", "--resume", "{bad_run}"], r"run.json: epochs must lie in"),
    # 4. silent wrong answers — the tester's examples
    ("wrong", "generate-from-nan-weights", ["generate", "{nan_lm}"],
     r"model.safetensors: wte.weight holds 1 non-finite value\(s\) \(NaN or inf\); refusing the weights"),
    ("wrong", "attention-of-nan-weights", ["attention", "{nan_model}", "--out", "{out}"],
     r"holds 1 non-finite value\(s\)"),
    ("wrong", "npz-nan-pixel-with-skip-nonfinite", [*TRAIN, "--data", "npz:{npz_nan}", "--skip-nonfinite"],
     r"1 non-finite pixel value\(s\)"),
    ("wrong", "weights-in-bool", ["analyze", "{bool_weights}", "--out", "{out}"],
     r"cls_token is stored as BOOL, not as floating point; refusing to cast it"),
    ("wrong", "weights-in-int64", ["analyze", "{int_weights}", "--out", "{out}"], r"is stored as I64, not as floating point"),
    # 4. further cases
    ("wrong", "report-of-inf-weights", ["report", "{nan_model}"], r"non-finite value\(s\)"),
    ("wrong", "circuits-of-nan-weights", ["circuits", "{nan_model}", "--out", "{out}"], r"holds 1 non-finite value\(s\)"),
    ("wrong", "ansatz-of-nan-weights", ["ansatz", "{nan_model}", "--no-progress", "--out", "{out}"], r"non-finite"),
    ("wrong", "weights-with-an-extra-tensor", ["analyze", "{extra_weights}", "--out", "{out}"],
     r"does not fit crate_nano: missing \[\], unexpected \['stray'\]"),
    ("wrong", "redunet-nan-operator", ["report", "{nan_redunet}"], r"layers.0.E holds .* non-finite"),
    ("wrong", "npz-inf-pixel", [*TRAIN, "--data", "npz:{npz_inf}"], r"non-finite pixel value\(s\)"),
    # 5. errors that were not one line — the tester's examples
    ("one-line", "npz-nan-labels", [*TRAIN, "--data", "npz:{npz_nan_labels}"], r"labels must be integers, found float"),
    ("one-line", "zero-sized-images", [*TRAIN, "--data", "npz:{npz_empty_images}"], r"zero-sized images"),
    ("one-line", "generate-prompt-not-utf8", ["generate", "{lm}", "--prompt", "ab\udcffc"], r"is not valid UTF-8"),
    ("one-line", "generate-temperature-1e-45", ["generate", "{lm}", "--temperature", "1e-45"],
     r"temperature 1e-45 is too small: the scaled logits overflow"),
    # 5. further cases
    ("one-line", "generate-top-k-huge", ["generate", "{lm}", "--top-k", "100000000"], r"--top-k must lie in"),
    ("one-line", "analyze-half-dataset-folder", ["analyze", "{no_model_name}"], r"does not describe a model"),
    ("one-line", "models-bad-pattern", ["models", "crate_["], r"no registered model matches 'crate_\['"),
    ("one-line", "recipe-not-utf8", [*TRAIN, "--recipe", "{latin1_recipe}"], r"not valid TOML"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    f = {"text": root / "corpus.txt"}
    f["text"].write_text("the cat sat on the mat\n" * 400)
    recipes = {"dropout_recipe": 'data = "digits"\n[model_args]\ndropout = 5.0\n', "list_recipe": 'model = ["crate_nano"]\n',
               "nested_toml": "x = " + "[" * 50_000 + "]" * 50_000 + "\n", "bool_recipe": "[train]\nlr = true\n"}
    for name, text in recipes.items():
        f[name] = root / f"{name}.toml"
        f[name].write_text(text)
    f["latin1_recipe"] = root / "latin1.toml"
    f["latin1_recipe"].write_bytes('description = "caf\u00e9"\n'.encode("latin-1"))
    torch.manual_seed(0)
    model = srr.create_model("crate_nano", dim=16, depth=1, heads=2)
    lm = srr.create_model("gpt_nano", dim=16, depth=1, heads=2, context=16)

    def saved(name, m, change=None, config_change=None):
        folder = root / name
        m.save_pretrained(folder, extra={"data": "digits"} if m is model else {"data": f"text:{f['text']}",
                                                                                "tokenizer": "bytes"})
        if change is not None:
            tensors = load_file(folder / "model.safetensors")
            change(tensors)
            save_file(tensors, folder / "model.safetensors")
        if config_change is not None:
            config = json.loads((folder / "config.json").read_text())
            config_change(config)
            (folder / "config.json").write_text(json.dumps(config))
        f[name] = folder

    def first_nan(key):
        def change(t):
            t[key] = t[key].clone()
            t[key].view(-1)[0] = float("nan")
        return change

    saved("lm", lm)
    saved("nan_lm", lm, first_nan("wte.weight"))
    saved("nan_model", model, first_nan("cls_token"))
    saved("bool_weights", model, lambda t: t.__setitem__("cls_token", t["cls_token"] > 0))
    saved("int_weights", model, lambda t: t.__setitem__("cls_token", t["cls_token"].long()))
    saved("extra_weights", model, lambda t: t.__setitem__("stray", torch.zeros(2)))
    saved("nested_json", model)
    (f["nested_json"] / "config.json").write_text('{"model": ' + "[" * 100_000 + "]" * 100_000 + "}")
    saved("args_list", model, config_change=lambda c: c.__setitem__("args", [1, 2]))
    saved("no_model_name", model, config_change=lambda c: c.__setitem__("model", None))
    net = srr.ReduNet(num_classes=2, layers=1, channels=4)
    net.build(torch.randn(8, 4), torch.arange(8) % 2)
    net.save(root / "nan_redunet")
    tensors = load_file(root / "nan_redunet" / "model.safetensors")
    tensors["layers.0.E"] = tensors["layers.0.E"] * float("nan")
    save_file(tensors, root / "nan_redunet" / "model.safetensors")
    f["nan_redunet"] = root / "nan_redunet"
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 6, 6), dtype=np.float32), np.arange(40) % 4
    arrays = {"npz_0d": dict(x_train=np.array(1.0), y_train=y[:30], x_test=x[30:], y_test=y[30:]),
              "npz_nan": dict(x=np.where(np.arange(40 * 36).reshape(40, 6, 6) == 77, np.nan, x), y=y),
              "npz_inf": dict(x=np.where(np.arange(40 * 36).reshape(40, 6, 6) == 5, np.inf, x), y=y),
              "npz_nan_labels": dict(x=x, y=np.where(y == 1, np.nan, y)),
              "npz_empty_images": dict(x=np.zeros((40, 0, 0), np.float32), y=y)}
    for name, content in arrays.items():
        f[name] = root / f"{name}.npz"
        np.savez(f[name], **content)
    run = root / "bad_run"
    assert main(["train", "--model", "crate_nano", "--set", "dim=16", "--set", "depth=1", "--set", "heads=2",
                 "--epochs", "1", "--no-progress", "--out", str(run)]) == 0
    saved_run = json.loads((run / "run.json").read_text())
    saved_run["objective_config"]["epochs"] = -3
    (run / "run.json").write_text(json.dumps(saved_run))
    f["bad_run"] = run
    return f


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("kind,case,argv,pattern", CASES, ids=[c[1] for c in CASES])
def test_refused_with_one_line(kind, case, argv, pattern, files, tmp_path, capsys, recwarn):
    capsys.readouterr()
    out = tmp_path / "out"
    argv = [a.format(out=out, **files) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    tried(f"hostile_{kind}")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), f"{lines[0]!r} does not match {pattern!r}"
    assert not [w for w in recwarn if "srr" not in str(w.filename)], [str(w.message) for w in recwarn]
    assert not out.exists() or not any(out.iterdir())


def test_the_catalogue_has_further_cases_in_every_class():
    counts = {k: sum(1 for c in CASES if c[0] == k) for k in ("values", "wrong", "one-line")}
    assert counts["values"] >= 20 and counts["wrong"] >= 8 and counts["one-line"] >= 6, counts
