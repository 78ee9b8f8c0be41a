"""``srr synthetic``: SNR and compression of noisy subspace tokens through AoT and CRATE layers with the true U."""
from __future__ import annotations

NAME = "synthetic"
HELP = "per-layer SNR and compression of tokens from a noisy mixture of subspaces, AoT and CRATE with the true U"


def add_arguments(p) -> None:
    p.add_argument("--out", default="runs/synthetic", help="output folder (default runs/synthetic)")
    p.add_argument("--k", type=int, default=4, help="number of subspaces (heads) (default %(default)s)")
    p.add_argument("--d", type=int, default=32, help="token dimension (default %(default)s)")
    p.add_argument("--rank", type=int, default=4, help="rank of each subspace (the head width) (default %(default)s)")
    p.add_argument("--tokens", type=int, default=64, help="tokens per set (default %(default)s)")
    p.add_argument("--sets", type=int, default=8, help="number of token sets (default %(default)s)")
    p.add_argument("--noise", type=float, default=0.5,
                   help="noise level σ (noise energy σ² per token) (default %(default)s)")
    p.add_argument("--depth", type=int, default=5, help="number of layers (default %(default)s)")
    p.add_argument("--eta", type=float, default=0.5, help="step size η of the AoT layer (default %(default)s)")
    p.add_argument("--tau", type=float, default=0.05,
                   help="threshold τ of the hard-thresholded attention (default %(default)s)")
    p.add_argument("--beta", type=float, default=1.0,
                   help="inverse temperature of the softmax (the AoT formula: 1) (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subspaces and the samples (default %(default)s)")


def run(args) -> int:
    import math

    from ..analysis.denoising import synthetic_report
    from ..runfolder import output_path

    out = output_path(args.out)
    result = synthetic_report(out, args.k, args.d, args.rank, args.tokens, args.sets, args.noise, args.depth, args.eta,
                              args.tau, args.beta, args.seed)
    names = list(result["curves"])
    print(f"predicted SNR ratio per layer (1 + ητ) = {result['predicted_ratio']:.4f}")
    print(f"{'layer':>5}  " + "  ".join(f"{n + ' SNR':>18} {'ratio':>6}" for n in names))
    fmt = lambda v, s: "inf" if v is not None and math.isinf(v) else ("-" if v is None else format(v, s))  # noqa: E731
    for ell in range(args.depth + 1):
        cells = [(result["curves"][n][ell]["snr"], result["curves"][n][ell]["ratio"]) for n in names]
        print(f"{ell:>5}  " + "  ".join(f"{fmt(s, '.4f'):>18} {fmt(r, '.3f'):>6}" for s, r in cells))
    print(f"wrote {out / 'synthetic.json'} and {out / 'synthetic.png'}")
    return 0
