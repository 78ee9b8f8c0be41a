"""``srr ansatz``: the feature ansatz (Pearson(WᵀW, AGOP^α)) and tight-frame statistics of every linear map."""
from __future__ import annotations

NAME = "ansatz"
HELP = "feature ansatz and tight-frame statistics per linear map, at initialisation and after training"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "ansatz")
    p.add_argument("--samples", type=int, default=1000, help="training images for the AGOP (default 1000)")
    p.add_argument("--alphas", default="0.25,0.5,0.75,1", help="powers α of the AGOP swept (default 0.25,0.5,0.75,1)")
    p.add_argument("--remove-init", action="store_true", help="use W − W0 (initial weights removed) in WᵀW")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial model when the run does not record one")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_set_argument(p)


def run(args) -> int:
    from contextlib import ExitStack

    from ..analysis.ansatz import ansatz_report, short_name
    from ..errors import ConfigError
    from .options import open_for_analysis

    try:
        alphas = tuple(float(a) for a in args.alphas.split(","))
    except ValueError:
        raise ConfigError(f"--alphas must be comma-separated numbers, got {args.alphas!r}") from None
    with ExitStack() as stack:
        (src,), data, out = open_for_analysis(args, "ansatz", stack)
        report = ansatz_report(src, data, out, args.samples, alphas, args.remove_init, args.seed,
                               not args.no_progress)
    results = report["results"]
    cols = list(results)
    head = "  ".join(f"{'corr½ ' + c:>13}  {'frame ' + c:>13}  {'λmin/λmax ' + c:>16}" for c in cols)
    print(f"{'map':<22} {'kind':<10} {head}")
    for i, row in enumerate(results[cols[0]]):
        cells = []
        for c in cols:
            r = results[c][i]
            cells.append(f"{_fmt(r['corr_half']):>13}  {_fmt(r['frame_distance_normalised']):>13}  "
                         f"{_fmt(r['eig_ratio'], '.2e'):>16}")
        print(f"{short_name(row['name']):<22} {row['kind']:<10} {'  '.join(cells)}")
    print(f"wrote {out / 'ansatz.json'} and {out / 'ansatz.png'}")
    return 0


def _fmt(v, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)
