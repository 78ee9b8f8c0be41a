"""``srr analyze``: per-layer compression and sparsity of one or several models next to random copies."""
from __future__ import annotations

NAME = "analyze"
HELP = "layer-by-layer compression R^c and sparsity, trained vs random initialisation (any transformer)"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "analysis", several=True)
    p.add_argument("--samples", type=int, default=512, help="number of held-out inputs measured (default 512)")
    p.add_argument("--eps", type=float, default=0.1, help="ε (not ε²) of the compression; default 0.1")
    p.add_argument("--seed", type=int, default=0, help="seed of the random copies")
    add_set_argument(p)


def run(args) -> int:
    from contextlib import ExitStack

    from ..analysis.layers import analyze
    from .options import open_for_analysis

    with ExitStack() as stack:
        sources, data, out = open_for_analysis(args, "analysis", stack, args.source)
        report = analyze(sources, data, out, args.samples, args.eps, args.seed)
    labels = list(report["models"])
    print(f"{'layer':>5}  " + "  ".join(f"{'R^c ' + lab:>22}  {'nonzero ' + lab:>26}" for lab in labels))
    depth = max(len(rows) for rows in report["models"].values())
    for i in range(depth):
        cells = []
        for lab in labels:
            rows = report["models"][lab]
            cells.append(f"{rows[i]['compression_mean']:>22.2f}  {rows[i]['sparsity_mean']:>26.3f}" if i < len(rows)
                         else f"{'':>22}  {'':>26}")
        print(f"{i + 1:>5}  " + "  ".join(cells))
    print(f"subspaces: {'; '.join(f'{k}: {v}' for k, v in report['basis'].items())}")
    print(f"wrote {out / 'layers.json'} and {out / 'layers.png'}")
    return 0
