"""``srr synthetic``: SNR and compression of noisy subspace tokens through AoT and CRATE layers with the true U."""
from __future__ import annotations

NAME = "synthetic"
HELP = "per-layer SNR and compression of tokens from a noisy mixture of subspaces, AoT and CRATE with the true U"


def add_arguments(p) -> None:
    p.add_argument("--out", default="runs/synthetic", help="output folder (default runs/synthetic)")
    p.add_argument("--k", type=int, default=4, help="number of subspaces (heads)")
    p.add_argument("--d", type=int, default=32, help="token dimension")
    p.add_argument("--rank", type=int, default=4, help="rank of each subspace (the head width)")
    p.add_argument("--tokens", type=int, default=64, help="tokens per set")
    p.add_argument("--sets", type=int, default=8, help="number of token sets")
    p.add_argument("--noise", type=float, default=0.5, help="noise level σ (noise energy σ² per token)")
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--eta", type=float, default=0.5, help="step size η of the AoT layer")
    p.add_argument("--tau", type=float, default=0.05, help="threshold τ of the hard-thresholded attention")
    p.add_argument("--beta", type=float, default=1.0, help="inverse temperature of the softmax (§5: 1)")
    p.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    import math
    from pathlib import Path

    from ..analysis.denoising import denoising_curves, plot_denoising
    from ..data import token_sets
    from ..io import atomic_write_json, ensure_writable_dir

    from ..errors import ConfigError

    if min(args.k, args.d, args.rank, args.tokens, args.sets) < 1:
        raise ConfigError("--k, --d, --rank, --tokens and --sets must be positive")
    if not all(math.isfinite(v) for v in (args.noise, args.eta, args.tau, args.beta)):
        raise ConfigError("--noise, --eta, --tau and --beta must be finite numbers")
    z, labels, bases, _ = token_sets(args.sets, args.tokens, args.k, args.d, args.rank, args.noise, args.seed)
    result = denoising_curves(z, labels, bases, args.depth, args.eta, args.tau, args.beta)
    result["data"] = {"k": args.k, "d": args.d, "rank": args.rank, "tokens": args.tokens, "sets": args.sets,
                      "noise": args.noise, "seed": args.seed}
    out = ensure_writable_dir(Path(args.out))
    atomic_write_json(out / "synthetic.json", _jsonable(result))
    plot_denoising(result, out / "synthetic.png",
                   f"K={args.k}, d={args.d}, rank {args.rank}, σ={args.noise}, η={args.eta}, τ={args.tau}")
    names = list(result["curves"])
    print(f"predicted SNR ratio per layer (1 + ητ) = {result['predicted_ratio']:.4f}")
    print(f"{'layer':>5}  " + "  ".join(f"{n + ' SNR':>18} {'ratio':>6}" for n in names))
    fmt = lambda v, s: "inf" if v is not None and math.isinf(v) else ("-" if v is None else format(v, s))  # noqa: E731
    for ell in range(args.depth + 1):
        cells = [(result["curves"][n][ell]["snr"], result["curves"][n][ell]["ratio"]) for n in names]
        print(f"{ell:>5}  " + "  ".join(f"{fmt(s, '.4f'):>18} {fmt(r, '.3f'):>6}" for s, r in cells))
    print(f"wrote {out / 'synthetic.json'} and {out / 'synthetic.png'}")
    return 0


def _jsonable(obj):
    """JSON has no infinity: an infinite SNR is written as the string "inf" (its row also says noise_free)."""
    import math

    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return "inf" if isinstance(obj, float) and math.isinf(obj) else obj
