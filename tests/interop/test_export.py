"""Export: every vision family and every language model to ONNX, run by onnxruntime, equal to eager PyTorch to 1e-4
on the traced batch and on another batch (and another length for text: the dynamic axes); torch.export programs
likewise; ``srr export`` on a run."""
import pytest
import torch

import srr
from srr.cli import main
from srr.errors import ConfigError
from srr.interop import export_model
from training_helpers import TINY

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"dim": 16, "depth": 1, "heads": 2}
VISION = ["crate_nano", "crate_conceptual_nano", "crate_negative_nano", "crate_transpose_nano", "crate_alpha_nano",
          "tost_nano", "aot_nano", "vit_nano"]
TEXT = ["crate_gpt_nano", "tost_gpt_nano", "aot_gpt_nano", "gpt_nano"]


def tiny(name):
    torch.manual_seed(0)
    if name.startswith("mlp"):
        return srr.create_model(name, width=32, depth=2)
    if name.endswith("official"):
        return srr.create_model(name, image_size=32, num_classes=10, dim=32, depth=1, heads=2)
    extra = {"context": 16} if name in TEXT else {}
    return srr.create_model(name, **SMALL, **extra)


def other_input(model):
    c = model.config
    if c.task == "lm":
        return torch.randint(0, c.vocab_size, (3, 7))
    return torch.randn(5, c.channels, c.image_size, c.image_size)  # the traced size, another batch


def check(name, tmp_path, fmt="onnx"):
    model = tiny(name)
    result = export_model(model, tmp_path / f"{name}.{fmt}", fmt, check_input=other_input(model) if fmt == "onnx"
                          else None)
    assert result["max_abs_diff"] <= 1e-4 and (tmp_path / f"{name}.{fmt}").stat().st_size > 0
    return result


@pytest.mark.parametrize("name", ["crate_nano", pytest.param("gpt_nano", marks=pytest.mark.slow)])
def test_onnx_equals_eager_on_other_batches_and_lengths(name, tmp_path):
    check(name, tmp_path)


@pytest.mark.slow
def test_torch_export_program_equals_eager(tmp_path):
    r = check("crate_nano", tmp_path, "torch_export")
    program = torch.export.load(str(tmp_path / "crate_nano.torch_export")).module()
    x = torch.randn(*r["input_shape"])
    model = tiny("crate_nano").eval()
    assert (program(x) - model(x)).abs().max() <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in VISION + TEXT + ["mlp_nano", "tost_tiny_official"]
                                  if n not in ("crate_nano", "gpt_nano")])
def test_every_family_exports_to_onnx(name, tmp_path):
    check(name, tmp_path)


def test_export_refuses_a_redunet_and_an_unknown_format(tmp_path):
    with pytest.raises(ConfigError, match="export supports the image families and the language models"):
        export_model(srr.create_model("redunet"), tmp_path / "r.onnx")
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_model(tiny("crate_nano"), tmp_path / "r.tfl", "tflite")


def test_srr_export_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["export", str(out), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "max |onnx - eager|" in printed and (tmp_path / "m.onnx").is_file()
    assert main(["export", str(out), "--out", str(out / "model.safetensors")]) == 2
    assert "is an input of this command" in capsys.readouterr().err
