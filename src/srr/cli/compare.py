"""``srr compare``: training runs side by side: one table of their summaries and differing settings, and their
curves overlaid."""
from __future__ import annotations

NAME = "compare"
HELP = "compare training runs: one table of summaries and differing settings, and overlaid curves (PNG)"


def add_arguments(p) -> None:
    p.add_argument("runs", metavar="RUN", nargs="+", help="run folders written by srr train")
    p.add_argument("--out", help="output folder for compare.json, compare.md, compare.png "
                                 "(default runs/compare-NAME-NAME…)")


def run(args) -> int:
    from pathlib import Path

    from ..analysis.compare import compare_runs
    from ..runfolder import output_path

    out = output_path(args.out) if args.out is not None else \
        Path("runs") / ("compare-" + "-".join(Path(r).name for r in args.runs))[:200]
    table = compare_runs(args.runs, out)
    print(table["markdown"], end="")
    print(f"wrote {', '.join(str(p) for p in sorted(out.iterdir()) if not p.name.startswith('.'))}")
    return 0
