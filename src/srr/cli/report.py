"""``srr report``: one self-contained HTML page for any run folder (image, MCR², language model, ReduNet)."""
from __future__ import annotations

NAME = "report"
HELP = "one self-contained HTML page for a run folder (computes the analyses it lacks)"


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by `srr train` or `srr redunet`")
    p.add_argument("--out", help="output file (default RUN_DIR/report.html)")
    p.add_argument("--index", type=int, default=0, help="test image or validation window of the attention maps")
    p.add_argument("--samples", type=int, default=512, help="held-out inputs of the layer statistics (default 512)")
    p.add_argument("--ansatz-samples", type=int, default=500, help="training images of the AGOP (default 500)")
    p.add_argument("--refresh", action="store_true", help="recompute every analysis even if the folder holds it")


def run(args) -> int:
    from pathlib import Path

    from ..analysis.report import build_report

    result = build_report(args.run_dir, args.out, index=args.index, samples=args.samples,
                          ansatz_samples=args.ansatz_samples, refresh=args.refresh)
    out = Path(result["out"])
    skipped = result["skipped"]
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(result['sections'])} sections"
          + (f"; not shown: {'; '.join(skipped)}" if skipped else "") + ")")
    return 0
