"""Exporting a model for deployment: ONNX (run by onnxruntime and most inference servers) or a ``torch.export``
program (``.pt2``), checked against the eager model before it is published.

* **ONNX** (``format="onnx"``): traced by PyTorch's TorchScript-based exporter at opset 17, with a dynamic batch axis
  (and a dynamic length for language models, up to their context). The input is named ``input`` (images
  ``(B, C, H, W)`` standardised as the run's data were, or token ids ``(B, T)`` as int64), the output ``logits``.
* **torch.export** (``format="torch_export"``): the ahead-of-time graph of ``torch.export.export`` saved with
  ``torch.export.save``, for the example's shapes (a batch of ``batch``; size-dependent fast paths of the operators
  are specialised, so the batch is fixed). Load it with ``torch.export.load(path).module()``.

After writing, the file is run on the example input (by onnxruntime, or by the loaded program) and its output compared
with the eager model's: the largest absolute difference is returned and the export refused when it exceeds
``atol`` (1e-4), so a file that computes something else is never left behind. The vision families (CRATE and its
variants, CRATE-α, ToST, AoT, ViT, the ReLU MLP) and the language models export; ReduNet (its memberships are
data-dependent softmaxes over class operators) does not. Needs the optional extra ``srr[export]``
(``onnx``, ``onnxruntime``, ``onnxscript``).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ..checks import check_int, check_memory, check_number
from ..errors import CheckpointError, ConfigError, one_line
from ..io import atomic_path
from ..runfolder import check_output_file

__all__ = ["FORMATS", "example_input", "export_model"]

FORMATS = ("onnx", "torch_export")
OPSET = 17


def example_input(model: nn.Module, batch: int = 2, seed: int = 0) -> Tensor:
    """A random input the model accepts: images of its configured size, or token ids filling its context."""
    batch = check_int(batch, "export batch", low=1, high=4096)
    config = getattr(model, "config", None)
    task = getattr(type(config), "task", None)
    g = torch.Generator().manual_seed(seed)
    if task == "lm":
        return torch.randint(0, int(config.vocab_size), (batch, int(config.context)), generator=g)
    if task == "image" and hasattr(config, "channels"):
        size = config.image_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        # the example, the exporter's trace of it and the checks hold several copies of the input at once
        check_memory(8 * batch * int(config.channels) * int(h) * int(w) * 4,
                     f"an export example of {batch} image(s) of {config.channels} x {h} x {w} (--batch)")
        return torch.randn(batch, int(config.channels), int(h), int(w), generator=g)
    raise ConfigError(f"export supports the image families and the language models, not "
                      f"{getattr(model, 'name', type(model).__name__)} ({task or 'unknown'} task)")


def _onnx(model: nn.Module, x: Tensor, tmp: Path, lm: bool) -> None:
    axes = {0: "batch", 1: "tokens"} if lm else {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes about Python values are expected here
        torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": axes, "logits": axes if lm else {0: "batch"}},
                          opset_version=OPSET, dynamo=False)


def _run_onnx(path: Path, x: Tensor) -> Tensor:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, min(4, torch.get_num_threads()))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def is_export(path: str | os.PathLike) -> bool:
    """Whether the file ``path`` is an earlier export (an ONNX model written by PyTorch's exporter, or a
    ``torch.export`` archive), which a new export may replace; any other existing file is refused."""
    import zipfile

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
        if head[:1] == b"\x08" and b"pytorch" in head:
            return True
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                return any(n.endswith("/archive_format") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return False


def export_model(model: nn.Module, path: str | os.PathLike, format: str = "onnx", batch: int = 2,
                 atol: float = 1e-4, check_input: Tensor | None = None) -> dict:
    """Write ``model`` to ``path`` in ``format`` (:data:`FORMATS`) and check it against eager PyTorch on a random
    input (and on ``check_input`` when given: another batch or length, for ONNX's dynamic axes). Returns
    ``{"path", "format", "input_shape", "max_abs_diff"}``."""
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r} (known: {', '.join(FORMATS)})")
    batch = check_int(batch, "export batch", low=1, high=4096)
    atol = check_number(atol, "export tolerance", low=0.0, high=1.0)
    needed = ("onnx", "onnxruntime") if format == "onnx" else ()
    for module in needed:
        try:
            __import__(module)
        except ImportError:
            raise ConfigError(f"exporting to ONNX needs the package {module}: pip install 'srr[export]'") from None
    model = model.eval().cpu()
    x = example_input(model, batch)
    lm = getattr(type(model.config), "task", None) == "lm"
    path = check_output_file(path, marker=is_export)
    checks = [x] + ([check_input] if check_input is not None else [])
    with atomic_path(path, suffix=".tmp" if format == "onnx" else ".pt2") as tmp:  # torch.export wants .pt2
        try:
            if format == "onnx":
                _onnx(model, x, tmp, lm)
                run = lambda inp: _run_onnx(tmp, inp)  # noqa: E731
            else:
                program = torch.export.export(model, (x,), strict=False)
                torch.export.save(program, str(tmp))
                loaded = torch.export.load(str(tmp)).module()
                run = lambda inp: loaded(inp)  # noqa: E731
            diff = 0.0
            with torch.no_grad():
                for inp in checks:
                    want, got = model(inp), run(inp)
                    if tuple(got.shape) != tuple(want.shape):
                        raise CheckpointError(f"the exported model gave shape {tuple(got.shape)}, eager "
                                             f"{tuple(want.shape)}")
                    diff = max(diff, float((got.float() - want.float()).abs().max()))
        except (ConfigError, CheckpointError):
            raise
        except Exception as exc:  # the exporters raise many kinds; one line naming the step
            raise ConfigError(f"cannot export {getattr(model, 'name', type(model).__name__)} to {format}: "
                              f"{one_line(exc, 1)}") from None
        if not diff <= atol:
            raise CheckpointError(f"the exported model differs from eager PyTorch by {diff:.3g} > {atol:g}; not "
                                 "written")
    return {"path": str(path), "format": format, "input_shape": list(x.shape), "max_abs_diff": diff}
