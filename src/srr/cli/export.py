"""``srr export``: a saved model as an ONNX file or a ``torch.export`` program, checked against eager PyTorch."""
from __future__ import annotations

NAME = "export"
HELP = "export a saved model to ONNX or torch.export, checked against eager PyTorch (max |difference| printed)"


def add_arguments(p) -> None:
    p.add_argument("source", metavar="RUN", help="a saved model or run folder, or a Hugging Face Hub id org/name")
    p.add_argument("--format", choices=["onnx", "torch_export"], default="onnx", help="file format (default onnx)")
    p.add_argument("--out", required=True, help="the file to write (e.g. model.onnx, model.pt2)")
    p.add_argument("--batch", type=int, default=2, help="batch of the example input that is traced and checked")
    p.add_argument("--atol", type=float, default=1e-4,
                   help="refuse the export when it differs from eager by more than this (default 1e-4)")


def run(args) -> int:
    from contextlib import ExitStack
    from pathlib import Path

    from ..analysis.runs import open_source
    from ..interop.export import export_model, is_export
    from ..runfolder import RunLock, check_output_file

    with ExitStack() as stack:
        if Path(args.source).is_dir():
            stack.enter_context(RunLock(args.source, exclusive=False))
        src = open_source(args.source)
        out = check_output_file(args.out, [src.path / n for n in ("config.json", "model.safetensors")]
                                if src.path else [], marker=is_export)
        result = export_model(src.model, out, args.format, args.batch, args.atol)
    print(f"wrote {result['path']} ({args.format}, input {tuple(result['input_shape'])}); "
          f"max |{'onnx' if args.format == 'onnx' else 'exported'} - eager| = {result['max_abs_diff']:.3g}")
    return 0
