"""``srr analyze``: per-layer compression and sparsity of a trained model next to a random copy."""
from __future__ import annotations

NAME = "analyze"
HELP = "layer-by-layer compression R^c and sparsity, trained vs random initialisation"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "analysis")
    p.add_argument("--samples", type=int, default=512, help="number of test images measured (default 512)")
    p.add_argument("--eps", type=float, default=0.1, help="ε (not ε²) of the compression; default 0.1")
    p.add_argument("--seed", type=int, default=0, help="seed of the random copy")
    add_set_argument(p)


def run(args) -> int:
    from pathlib import Path

    from ..data import load_data
    from ..errors import ConfigError
    from ..io import ensure_writable_dir
    from .options import load_source

    if args.samples < 1:
        raise ConfigError("--samples must be positive")
    trained, name, model_args, spec, out, label = load_source(args.source, args.data, args.set, args.seed, "analysis")
    out = Path(args.out) if args.out else out
    ensure_writable_dir(out)  # fail before the work, not after it
    report = produce(trained, label, name, model_args, load_data(spec), out, args.samples, args.eps, args.seed,
                     source=str(args.source))
    print(f"{'layer':>5}  {'R^c ' + label:>14}  {'R^c random':>12}  {'sparsity ' + label:>18}  {'sparsity random':>16}")
    for a, b in zip(report["models"][label], report["models"]["random init"]):
        print(f"{a['layer']:>5}  {a['compression_mean']:>14.2f}  {b['compression_mean']:>12.2f}  "
              f"{a['sparsity_mean']:>18.3f}  {b['sparsity_mean']:>16.3f}")
    print(f"wrote {out / 'layers.json'} and {out / 'layers.png'}")
    return 0


def produce(trained, label: str, name: str, model_args: dict, data, out, samples: int = 512, eps: float = 0.1,
            seed: int = 0, source: str = "") -> dict:
    """Write ``layers.json`` and ``layers.png``: per-layer statistics of ``trained`` and of a random copy (``seed``)
    on the first ``samples`` test images."""
    import torch

    from ..analysis import compare_layers, plot_layers
    from ..io import atomic_write_json, ensure_writable_dir
    from ..models import create_model

    torch.manual_seed(seed)
    random = create_model(name, **model_args)
    report = compare_layers({label: trained, "random init": random}, data.x_test[:samples], eps=eps)
    report.update({"model": name, "data": data.spec, "source": source})
    ensure_writable_dir(out)
    atomic_write_json(out / "layers.json", report)
    plot_layers(report, out / "layers.png")
    return report
