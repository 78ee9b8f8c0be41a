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
    from pathlib import Path

    from ..analysis.ansatz import short_name
    from ..data import load_data
    from ..errors import ConfigError
    from ..io import ensure_writable_dir
    from .options import load_source

    try:
        alphas = tuple(float(a) for a in args.alphas.split(","))
    except ValueError:
        raise ConfigError(f"--alphas must be comma-separated numbers, got {args.alphas!r}") from None
    if args.samples < 1 or not alphas or min(alphas) <= 0:
        raise ConfigError("--samples must be positive and every α > 0")
    if 0.5 not in alphas:
        alphas = tuple(sorted(alphas + (0.5,)))
    model, name, model_args, spec, out, label = load_source(args.source, args.data, args.set, args.seed, "ansatz")
    out = Path(args.out) if args.out else out
    ensure_writable_dir(out)  # fail before the work, not after it
    report = produce(model, name, model_args, label, args.source, load_data(spec), out, args.samples, alphas,
                     args.remove_init, args.seed, not args.no_progress)
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


def produce(model, name: str, model_args: dict, label: str, source: str, data, out, samples: int = 1000,
            alphas=(0.25, 0.5, 0.75, 1.0), remove_init: bool = False, seed: int = 0, progress: bool = False) -> dict:
    """Write ``ansatz.json`` and ``ansatz.png``: the ansatz of ``model`` (and of its initialisation when ``label`` is
    "trained") on the first ``samples`` training images of ``data``."""
    from ..analysis.ansatz import feature_ansatz, plot_ansatz
    from ..io import atomic_write_json, ensure_writable_dir
    from .options import initial_copy

    x = data.x_train[:samples]
    init, how = initial_copy(source, name, model_args, seed)
    models = {"init": init, "trained": model} if label == "trained" else {"init": model}
    results = {k: feature_ansatz(m, x, alphas, init=init, remove_init=remove_init and k != "init", progress=progress)
               for k, m in models.items()}
    variant = (f"Pearson(F, AGOP^alpha) with F = {'(W-W0)^T (W-W0)' if remove_init else 'W^T W'}; "
               "AGOP = W^T G W, G = mean over samples of the sum over outputs c (logits) and tokens of the "
               "uncentred pre-activation gradients g g^T")
    report = {"model": name, "data": data.spec, "samples": len(x), "alphas": list(alphas), "variant": variant,
              "init": how, "results": results}
    ensure_writable_dir(out)
    atomic_write_json(out / "ansatz.json", report)
    plot_ansatz(results, out / "ansatz.png", f"{name} on {data.spec}, {len(x)} training images")
    return report


def _fmt(v, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)
