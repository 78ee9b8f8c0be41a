"""Bad input catalogue (issue 8, item 2): every case is refused by the CLI with exit code 2 and one line on stderr
that names the problem — never a traceback, never a half-finished run.

The broken files are written in their real formats and then damaged (see ``bad_files.py``). Cases run through
``srr.cli.main([...])``; a few run again as real ``python -m srr`` processes.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bad_files import make_files
from reliability_counts import tried

from srr.cli import main

from paths import ROOT
TRAIN = "train --model crate_nano --set dim=16 --set depth=1 --set heads=2 --epochs 1 --no-progress --out {out}"
REDUNET = "redunet --layers 1 --no-progress --out {out}"
ANALYZE = "analyze --samples 8 --out {out}"
RECIPE = "train --epochs 1 --no-progress --no-tensorboard --out {out} --recipe"
RESUME = "train --no-progress --no-tensorboard --resume"
LM = "train --model crate_gpt_nano --set dim=32 --set depth=1 --set heads=2 --steps 2 --no-progress --out {out}"

# (id, command line with {file names} from bad_files.make_files, regular expression the one line must match)
CASES = [
    # unknown names
    ("unknown-command", "nosuch", r"invalid choice: 'nosuch'"),
    ("unknown-flag", TRAIN + " --epochz 3", r"unrecognized arguments: --epochz"),
    ("unknown-model", "train --model crate_nan0", r"unknown model 'crate_nan0'; did you mean crate_nano"),
    ("unknown-model-analyze", "analyze vit_nanno", r"unknown model 'vit_nanno'; did you mean"),
    ("unknown-models-pattern", "models nosuch*", r"no registered model matches 'nosuch\*'"),
    ("unknown-model-option", TRAIN + " --set depthh=2", r"--set: crate_nano has no option 'depthh'; options are: dim"),
    ("unknown-data-source", TRAIN + " --data cifar11:/x", r"unknown data source 'cifar11'"),
    ("unknown-data-source-redunet", "redunet --data digitz", r"unknown data source 'digitz'; did you mean digits"),
    ("unknown-synthetic-option", TRAIN + " --data synthetic:kk=3", r"bad synthetic option 'kk=3'"),
    ("unknown-objective", TRAIN + " --objective hinge", r"argument --objective: invalid choice: 'hinge'"),
    ("unknown-device", TRAIN + " --device tpu9", r"unknown device 'tpu9'"),
    ("data-source-needs-path", TRAIN + " --data idx", r"data source 'idx' needs a path"),
    ("data-source-takes-no-argument", TRAIN + " --data digits:big", r"'digits' takes no argument"),
    ("unknown-device-generate", "generate {lm_ok} --device tpu9", r"unknown device 'tpu9'"),
    # shapes, sizes, channels and types that do not fit the model
    ("image-size-mismatch", TRAIN + " --set image_size=9 --set patch_size=3",
     r"expects images of shape \(batch, 1, 9, 9\), got \(2, 1, 8, 8\) \(other sizes divisible by the patch"),
    ("channel-mismatch", TRAIN + " --set channels=3", r"expects images of shape \(batch, 3, 8, 8\)"),
    ("patch-does-not-divide", TRAIN + " --set patch_size=3", r"image size 8x8 is not divisible by the patch size"),
    ("vectors-into-image-model", TRAIN + " --data synthetic", r"image size 1x32 is not divisible"),
    ("option-of-wrong-type", TRAIN + " --set dim=abc", r"crate_nano: dim must be an integer, got 'abc'"),
    ("negative-width", TRAIN + " --set dim=-1", r"crate_nano: dim must lie in \[1, 65536\], got -1"),
    ("saved-model-on-other-data", ANALYZE + " {model_ok} --data synthetic", r"expects images of shape"),
    ("conv-lift-on-vectors", REDUNET + " --arch conv --data synthetic", r"lift kernel 3 exceeds the signal size"),
    ("text-into-image-model", TRAIN + " --data text:{text_ok}", r"gives text for language models .*not labelled"),
    ("images-into-language-model", LM + " --data digits", r"gives labelled images, not text"),
    ("context-beyond-model", LM + " --data text:{text_ok} --context 4096", r"context 4096 exceeds the model's"),
    ("vocabulary-too-small", LM + " --data text:{text_ok} --set vocab_size=10", r"vocabulary \(10\) is smaller"),
    ("generate-from-image-model", "generate {model_ok}", r"holds crate_nano, not a language model"),
    # labels out of range
    ("labels-beyond-classifier", TRAIN + " --set num_classes=5", r"labels up to 9 but the model has 5 outputs"),
    ("negative-labels-in-file", TRAIN + " --data idx:{idx_negative_labels}", r"t10k labels must be non-negative, found -1"),
    ("cifar-labels-out-of-range", TRAIN + " --data cifar10:{cifar_labels}", r"label 11 is out of range for 10 classes"),
    ("npz-negative-labels", TRAIN + " --data npz:{npz_negative_labels}", r"labels must be non-negative, found -1"),
    # empty data sets
    ("empty-idx-file", TRAIN + " --data idx:{idx_empty}", r"the train split is empty"),
    ("idx-folder-without-files", TRAIN + " --data idx:{idx_none}", r"holds no train-/t10k-"),
    ("idx-folder-missing", TRAIN + " --data idx:{root}/absent", r"IDX folder not found"),
    ("empty-synthetic", TRAIN + " --data synthetic:n=0", r"synthetic option n must lie in \[1, 1073741824\], got 0"),
    ("empty-text", LM + " --data text:{text_empty}", r"empty.txt is empty"),
    ("text-too-short", LM + " --data text:{text_short}", r"holds 3 byte\(s\): too short"),
    ("text-is-a-folder", LM + " --data text:{text_folder}", r"is a folder; text:PATH needs a plain text file"),
    ("text-missing", LM + " --data text:{root}/absent.txt", r"text file not found"),
    ("cifar-empty-batch", TRAIN + " --data cifar10:{cifar_empty}", r"data_batch_1: the batch holds no images"),
    ("folder-without-images", TRAIN + " --data folder:{folder_empty}", r"no training images"),
    ("npz-empty-split", TRAIN + " --data npz:{npz_empty}", r"the train split is empty"),
    # truncated or corrupted files of every format (text has none: any bytes are valid text); IDX, raw and gzip
    ("idx-truncated", TRAIN + " --data idx:{idx_truncated}", r"truncated or padded IDX data"),
    ("idx-padded", TRAIN + " --data idx:{idx_padded}", r"truncated or padded IDX data"),
    ("idx-truncated-header", TRAIN + " --data idx:{idx_header}", r"truncated IDX header"),
    ("idx-bad-magic", TRAIN + " --data idx:{idx_magic}", r"not an IDX file \(bad magic number\)"),
    ("idx-gz-truncated", TRAIN + " --data idx:{idx_gz_truncated}", r"corrupt or truncated gzip stream"),
    ("idx-gz-corrupted", TRAIN + " --data idx:{idx_gz_corrupt}", r"corrupt or truncated gzip stream"),
    ("idx-count-mismatch", TRAIN + " --data idx:{idx_count_mismatch}", r"15 t10k labels for 20 samples"),
    ("idx-labels-not-1d", TRAIN + " --data idx:{idx_labels_2d}", r"t10k labels must be 1-D, found shape \(4, 5\)"),
    ("idx-labels-missing", TRAIN + " --data idx:{idx_no_labels}", r"found the t10k images but not the t10k labels"),
    # CIFAR python batches
    ("cifar-truncated", TRAIN + " --data cifar10:{cifar_truncated}", r"test_batch: truncated or corrupt pickle"),
    ("cifar-garbage", TRAIN + " --data cifar10:{cifar_garbage}", r"data_batch_3: truncated or corrupt pickle"),
    ("cifar-not-a-dict", TRAIN + " --data cifar10:{cifar_list}", r"a CIFAR batch is a dict, found list"),
    ("cifar-wrong-shape", TRAIN + " --data cifar10:{cifar_shape}", r"'data' must be n x 3072 uint8"),
    ("cifar-file-missing", TRAIN + " --data cifar10:{cifar_missing}", r"lacks the cifar10 file\(s\) data_batch_4"),
    ("cifar100-files-missing", TRAIN + " --data cifar100:{cifar_truncated}", r"lacks the cifar100 file\(s\) train"),
    # image folders
    ("folder-broken-png", TRAIN + " --data folder:{folder_broken_png}", r"b/3.png: cannot decode the image"),
    ("folder-not-an-image", TRAIN + " --data folder:{folder_not_png}", r"a/1.png: cannot decode the image"),
    ("folder-val-class-unknown", TRAIN + " --data folder:{folder_split}", r"class folder\(s\) \['c'\] do not exist"),
    ("folder-size-zero", TRAIN + " --data folder:{folder_split},size=0", r"folder option size must lie in \[1, 65536\], got 0"),
    ("folder-missing", TRAIN + " --data folder:{root}/absent", r"image folder not found"),
    # npz
    ("npz-truncated", TRAIN + " --data npz:{npz_truncated}", r"not a readable .npz file"),
    ("npz-not-a-zip", TRAIN + " --data npz:{npz_not_zip}", r"not an .npz file"),
    ("npz-is-npy", TRAIN + " --data npz:{npz_npy}", r"array.npy: not an .npz file"),
    ("npz-object-array", TRAIN + " --data npz:{npz_object}", r"cannot read it without unpickling objects"),
    ("npz-arrays-missing", TRAIN + " --data npz:{npz_keys}", r"needs arrays 'x' and 'y'"),
    ("npz-float16", TRAIN + " --data npz:{npz_float16}", r"integers or float32/float64, found float16"),
    ("npz-shapes-differ", TRAIN + " --data npz:{npz_shapes}", r"differ in shape"),
    ("npz-labels-2d", TRAIN + " --data npz:{npz_labels_2d}", r"labels must be 1-D, found shape \(4, 5\)"),
    ("npz-count-mismatch", TRAIN + " --data npz:{npz_count}", r"10 labels for 20 samples"),
    ("npz-five-dims", TRAIN + " --data npz:{npz_five_dims}", r"images must be \(n, H, W\)"),
    ("npz-missing", TRAIN + " --data npz:{root}/absent.npz", r"npz file not found"),
    # recipes
    ("recipe-unknown-name", RECIPE + " nosuch_recipe", r"unknown recipe 'nosuch_recipe'"),
    ("recipe-not-toml", RECIPE + " {recipe_bad_toml}", r"not valid TOML"),
    ("recipe-unknown-key", RECIPE + " {recipe_unknown_key}", r"unknown_key.toml: unknown key 'foo'; allowed: data"),
    ("recipe-wrong-type", RECIPE + " {recipe_wrong_type}", r"wrong_type.toml: epochs must be an integer, got 'ten'"),
    ("recipe-unknown-setting", RECIPE + " {recipe_unknown_setting}", r"unknown training setting 'epochz'; did you"),
    ("recipe-unknown-model", RECIPE + " {recipe_unknown_model}", r"unknown model 'crate_nanoo'"),
    ("recipe-unknown-model-arg", RECIPE + " {recipe_unknown_model_arg}", r"recipe unknown_model_arg: crate_nano has no option 'depthh'"),
    # checkpoints of another architecture, of mismatched shapes, or damaged
    ("checkpoint-other-architecture", ANALYZE + " {model_other_arch}", r"does not fit crate_nano"),
    ("checkpoint-mismatched-shapes", ANALYZE + " {model_shapes}", r"does not fit crate_nano"),
    ("checkpoint-truncated", ANALYZE + " {model_truncated}", r"not a readable safetensors file"),
    ("checkpoint-garbage", ANALYZE + " {model_garbage}", r"not a readable safetensors file"),
    ("checkpoint-config-not-json", ANALYZE + " {model_bad_json}", r"config.json is not valid JSON"),
    ("checkpoint-config-not-a-model", ANALYZE + " {model_not_a_dict}", r"does not describe a model"),
    ("checkpoint-unknown-architecture", ANALYZE + " {model_unknown_arch}", r"unknown model 'crate_gigantic'"),
    ("checkpoint-unknown-argument", ANALYZE + " {model_bad_args}", r"config.json: crate_nano has no option 'depthh'"),
    ("checkpoint-without-weights", ANALYZE + " {model_no_weights}", r"holds no model.safetensors"),
    ("not-a-saved-model", ANALYZE + " {root}", r"holds no config.json: not a saved srr model"),
    ("resume-not-a-run", RESUME + " {root}", r"holds no run.json: not an srr training run"),
    ("resume-run-json-corrupt", RESUME + " {run_bad_json}", r"run.json is not valid JSON"),
    ("resume-without-checkpoint", RESUME + " {run_no_checkpoint}", r"no complete checkpoint to resume from"),
    ("resume-mismatched-shapes", RESUME + " {run_shapes}", r"does not fit this model: .* size mismatch for"),
    ("resume-other-architecture", RESUME + " {run_other_arch}", r"does not fit this model: .*Unexpected key\(s\)"),
    ("resume-unknown-architecture", RESUME + " {run_unknown_arch}", r"unknown model 'crate_gigantic'"),
    ("resume-weights-truncated", RESUME + " {run_weights_truncated}", r"model.safetensors is not readable"),
    ("resume-state-truncated", RESUME + " {run_state_truncated}", r"state.pt is truncated or corrupt"),
    ("init-not-safetensors", TRAIN + " --init {npz_not_zip}", r"is not a readable safetensors file"),
    ("init-other-architecture", TRAIN + " --init {lm_ok}", r"shares no tensor of matching name and shape"),
    ("init-missing", TRAIN + " --init {root}/absent", r"no weights to start from"),
    # contradictory or impossible settings
    ("resume-with-model", RESUME + " {run_ok} --model vit_nano", r"--model cannot change a resumed run"),
    ("resume-with-data", RESUME + " {run_ok} --data digits", r"--data cannot change a resumed run"),
    ("resume-with-set", RESUME + " {run_ok} --set dim=8", r"--set cannot change a resumed run"),
    ("resume-with-recipe", RESUME + " {run_ok} --recipe digits_demo", r"--recipe cannot change a resumed run"),
    ("resume-with-init", RESUME + " {run_ok} --init {model_ok}", r"--init cannot change a resumed run"),
    ("resume-with-other-out", RESUME + " {run_ok} --out {out}", r"--out cannot change a resumed run"),
    ("resume-with-objective", RESUME + " {run_ok} --objective mcr2", r"--objective cannot change a resumed run"),
    ("resume-with-seed", RESUME + " {run_ok} --seed 99", r"--seed cannot change a resumed run \(0 in .*\)"),
    ("resume-with-lr", RESUME + " {run_ok} --lr 0.5", r"--lr cannot change a resumed run"),
    ("fp16-on-cpu", TRAIN + " --precision fp16", r"fp16 needs a CUDA device"),
    ("accumulate-beyond-data", TRAIN + " --accumulate 1000", r"cannot feed 1 process\(es\) x 1000 micro-batch\(es\)"),
    ("accumulate-beyond-bound", TRAIN + " --accumulate 100000", r"--accumulate must lie in \[1, 65536\], got 100000"),
    ("unknown-optimizer", TRAIN + " --optimizer adam", r"--optimizer must be one of adamw, lion, sgd; got 'adam' \(did you mean 'adamw'\?\)"),
    ("set-on-saved-model", ANALYZE + " {model_ok} --set dim=8", r"--set .* saved model"),
    ("mcr2-flag-without-mcr2", TRAIN + " --gamma1 2", r"--gamma1 does not apply to --objective classification \(it belongs to mcr2\)"),
    ("cuda-without-cuda", TRAIN + " --device cuda", r"CUDA is not available"),
    ("cuda-without-cuda-generate", "generate {lm_ok} --device cuda", r"CUDA is not available"),
    ("image-flag-for-language-model", LM + " --data text:{text_ok} --epochs 3", r"--epochs does not apply to --objective lm"),
    ("mcr2-flag-for-language-model", LM + " --data text:{text_ok} --eps 0.5", r"--eps does not apply to --objective lm \(it belongs to mcr2, mcr2_views, simdino\)"),
    ("negative-temperature", "generate {lm_ok} --temperature -1", r"--temperature must lie in \[0, 1e\+06\], got -1"),
    ("learning-rate-nan", TRAIN + " --lr nan", r"--lr"),
    ("label-smoothing-above-one", TRAIN + " --label-smoothing 2", r"label.smoothing"),
    ("zero-epochs", TRAIN + " --epochs 0", r"--epochs must lie in \[1, 1000000\], got 0"),
    ("zero-samples", ANALYZE + " crate_nano --samples 0", r"--samples must be >= 1, got 0"),
    ("eps-zero", ANALYZE + " crate_nano --eps 0", r"eps must be a finite positive number"),
    ("mcr2-eps-zero", TRAIN + " --objective mcr2 --eps 0", r"--eps must lie in \(1e-100, 1e\+100\], got 0"),
    ("zero-layers", REDUNET + " --layers 0", r"--layers must lie in \[1, 4096\], got 0"),
    # the instruments
    ("ansatz-unknown-model", "ansatz crate_nanoo --no-progress", r"unknown model 'crate_nanoo'"),
    ("ansatz-alphas-not-numbers", "ansatz {model_ok} --alphas abc", r"--alphas must be comma-separated numbers"),
    ("ansatz-mismatched-checkpoint", "ansatz {model_shapes} --no-progress --out {out}", r"does not fit crate_nano"),
    ("ansatz-other-data", "ansatz {model_ok} --data synthetic --no-progress --out {out}", r"expects images of shape"),
    ("attention-index-out-of-range", "attention {model_ok} --index 100000 --out {out}", r"--index must lie in \[0, 358\], got 100000"),
    ("attention-image-size-zero", "attention {model_ok} --image-size 0 --out {out}", r"--image-size must lie in \[1, 32768\], got 0"),
    ("attention-image-size-odd", "attention {model_ok} --image-size 7 --out {out}", r"other sizes divisible by the patch"),
    ("report-not-a-run", "report {root}/absent", r"run folder not found"),
    ("report-samples-zero", "report {model_ok} --samples 0 --out {out}/r.html", r"--samples must be >= 1, got 0"),
    ("report-index-negative", "report {model_ok} --index -5 --out {out}/r.html", r"--index must lie in \[0, 358\], got -5"),
    ("synthetic-no-subspaces", "synthetic --k 0 --out {out}", r"--k must lie in \[1, 4096\], got 0"),
    ("synthetic-no-tokens", "synthetic --tokens 0 --out {out}", r"--tokens must lie in \[1, 16777216\], got 0"),
    ("synthetic-rank-beyond-d", "synthetic --rank 100 --out {out}", r"--rank 100 exceeds --d 32"),
    ("synthetic-eta-nan", "synthetic --eta nan --out {out}", r"--eta must be a finite number, got nan"),
    ("synthetic-depth-zero", "synthetic --depth 0 --out {out}", r"need depth >= 1"),
    # output folders that cannot be written (as root too: a path below a regular file)
    ("out-below-a-file", TRAIN + " --out {file}/run", r"cannot write to output directory .*file/run"),
    ("out-is-a-file", TRAIN + " --out {file}", r"cannot write to output directory .*file: it is a file, not a folder"),
    ("out-empty", TRAIN + " --out ''", r"--out must name a folder, got an empty string"),
    ("redunet-out-below-a-file", REDUNET + " --out {file}/r", r"cannot write to output directory"),
    ("analyze-out-below-a-file", ANALYZE + " {model_ok} --out {file}/a", r"cannot write to output directory"),
    ("ansatz-out-below-a-file", "ansatz {model_ok} --no-progress --out {file}/a", r"cannot write to output directory"),
    ("attention-out-below-a-file", "attention {model_ok} --out {file}/a", r"cannot write to output directory"),
    ("report-out-below-a-file", "report {model_ok} --out {file}/r.html", r"cannot write to output directory"),
    ("synthetic-out-below-a-file", "synthetic --out {file}/s", r"cannot write to output directory"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("bad"))


def argv_of(template: str, files: dict, out: Path) -> list[str]:
    """The command line, with ``{name}`` replaced by the broken file's path and ``{out}`` by a fresh folder."""
    return shlex.split(template.format(out=out, **{k: str(v) for k, v in files.items()}))


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors (unknown command, flag or choice)
        code = exc.code
    return code, capsys.readouterr().err


def assert_one_line(err: str, pattern: str) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, f"not one line:\n{err}"
    assert lines[0].startswith("srr"), lines[0]
    assert re.search(pattern, lines[0]), f"{lines[0]!r} does not match {pattern!r}"


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("template,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_refuses_with_one_line_and_exit_2(template, pattern, files, capsys, tmp_path):
    if ("--device cuda" in template or "fp16" in template) and torch.cuda.is_available():  # pragma: no cover
        pytest.skip("CUDA is available here")
    code, err = run_cli(argv_of(template, files, tmp_path / "out"), capsys)
    tried("bad_input_cases")
    assert code == 2
    assert_one_line(err, pattern)
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())  # refused before any file was written


@pytest.mark.slow
@pytest.mark.parametrize("case", ["unknown-model", "idx-gz-truncated", "folder-broken-png", "checkpoint-mismatched-shapes",
                                  "resume-state-truncated", "out-below-a-file"])
def test_real_process_refuses_with_one_line_and_exit_2(case, files):
    template, pattern = next(c[1:] for c in CASES if c[0] == case)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    argv = argv_of(template, files, files["root"] / case)
    proc = subprocess.run([sys.executable, "-m", "srr", *argv], env=env, capture_output=True, text=True, timeout=300)
    tried("bad_input_subprocess_cases")
    assert proc.returncode == 2
    assert_one_line(proc.stderr, pattern)


def test_read_only_folder_is_refused_for_a_regular_user(files, capsys):
    if os.geteuid() == 0:
        pytest.skip("running as root: permissions do not block writes (the cases below a regular file cover it)")
    locked = files["root"] / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err = run_cli(argv_of(TRAIN, files, locked / "run"), capsys)
    finally:
        locked.chmod(0o700)
    assert code == 2
    assert_one_line(err, r"cannot write to output directory .*locked/run: Permission denied")
