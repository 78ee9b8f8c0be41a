"""``srr redunet``: construct a ReduNet from a data set layer by layer, evaluate it, write its report."""
from __future__ import annotations

import math

NAME = "redunet"
HELP = "construct a ReduNet (no back-propagation), evaluate it on the test split and write the per-layer report"


def add_arguments(p) -> None:
    p.add_argument("--data", default="digits", help="data spec: digits, idx:DIR, synthetic[:k=4,...] (default digits)")
    p.add_argument("--layers", type=int, default=20, help="number of layers (default 20)")
    p.add_argument("--out", help="output folder (default runs/redunet-DATA); refused if it holds another run")
    p.add_argument("--overwrite", action="store_true", help="replace the srr output of another run in --out")
    p.add_argument("--arch", choices=["vector", "conv"], default="vector",
                   help="vector: flattened images; conv: random circular 2-D lift + shift-invariant (FFT) layers")
    p.add_argument("--eta", type=float, default=0.5, help="step size η (default 0.5)")
    p.add_argument("--eps", type=float, default=math.sqrt(0.1),
                   help="distortion ε, not ε² (default sqrt(0.1): the official eps=0.1 is ε²)")
    p.add_argument("--lam", type=float, default=500.0, help="membership sharpness λ (default 500)")
    p.add_argument("--channels", type=int, default=8, help="lift channels for --arch conv (default 8)")
    p.add_argument("--kernel", type=int, default=3, help="lift filter size for --arch conv (default 3)")
    p.add_argument("--samples-per-class", type=int, help="construct from at most N training samples per class")
    p.add_argument("--k", type=int, default=5, help="neighbours of the k-NN classifier (default 5)")
    p.add_argument("--components", type=int, default=10, help="subspace dimension of nearest subspace (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import re

    from ..data import load_data
    from ..errors import ConfigError
    from ..analysis.redunet import run_experiment

    from ..checks import check_eps, check_int, check_number

    check_int(args.layers, "--layers", low=1, high=4096)
    check_number(args.eta, "--eta", low=0.0, low_open=True, high=1e6)
    check_eps(args.eps, "--eps")
    check_number(args.lam, "--lam", low=0.0, low_open=True, high=1e12)
    check_int(args.k, "--k", low=1)
    check_int(args.components, "--components", low=1)
    check_int(args.channels, "--channels", low=1, high=4096)
    check_int(args.kernel, "--kernel", low=1, high=4096)
    check_int(args.seed, "--seed", low=0, high=(1 << 63) - 1)
    if args.samples_per_class is not None:
        check_int(args.samples_per_class, "--samples-per-class", low=1)
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out must name a folder, got an empty string")
    data = load_data(args.data)
    out = args.out or f"runs/redunet-{re.sub(r'[^A-Za-z0-9_.-]+', '_', args.data)}"
    s = run_experiment(data, args.layers, out, args.arch, eta=args.eta, eps=args.eps, lam=args.lam,
                       channels=args.channels, kernel=args.kernel, samples_per_class=args.samples_per_class,
                       k=args.k, n_components=args.components, seed=args.seed, progress=not args.no_progress,
                       overwrite=args.overwrite)
    acc = s["test_accuracy"]
    print(f"ReduNet ({args.arch}, {args.layers} layers) on {args.data}: ΔR {s['delta_R']['first']:.2f} -> "
          f"{s['delta_R']['last']:.2f}; test accuracy: nearest subspace {acc['output']['nearest_subspace']:.4f}, "
          f"{args.k}-NN {acc['output']['knn']:.4f}, memberships {acc['redunet_memberships']:.4f} "
          f"({s['build_seconds']:.1f} s) -> {out}")
    return 0
