"""``srr denoise``: the exact denoiser of a mixture of low-rank Gaussians against the oracle and the network's steps,
the coding rates before and after, and the reverse-time sampler (the work is :func:`srr.principles.denoise_report`)."""
from __future__ import annotations

NAME = "denoise"
HELP = ("denoise a mixture of low-rank Gaussians: posterior mean vs oracle vs one MSSA / attention-only step; "
        "coding rates; a reverse-time sampler")


def add_arguments(p) -> None:
    from ..principles.denoising import DenoiseSettings
    from .options import add_settings_arguments

    p.add_argument("--out", default="runs/denoise", help="output folder (default runs/denoise)")
    add_settings_arguments(p, DenoiseSettings)


def run(args) -> int:
    from pathlib import Path

    from ..principles.denoising import DenoiseSettings, denoise_report
    from ..runfolder import output_path
    from .options import settings_from_args

    settings = settings_from_args(args, DenoiseSettings)
    report = denoise_report(output_path(args.out), settings)
    print(f"{'sigma':>7} {'posterior':>10} {'oracle':>10} {'MSSA':>10} {'AoT':>10} {'noisy':>10}   "
          f"{'MSSA/post':>9} {'post/oracle':>11}   {'R noisy':>8} {'R denoised':>10}")
    for row in report["mse"]:
        m, r = row["methods"], row["rates"]
        print(f"{row['sigma']:7.3f} {m['posterior']['mse']:10.4f} {m['oracle']['mse']:10.4f} {m['mssa']['mse']:10.4f} "
              f"{m['attention_only']['mse']:10.4f} {m['noisy']['mse']:10.4f}   "
              f"{row['ratios']['mssa_over_posterior']:9.3f} {1 / row['ratios']['oracle_over_posterior']:11.3f}   "
              f"{r['noisy']['R']:8.3f} {r['posterior']['R']:10.3f}")
    s = report["sampler"]
    shares = ", ".join(f"{v:.3f}" for v in s["shares"])
    print(f"sampler: {s['n']} samples, shares per subspace [{shares}], distance to the nearest subspace: mean "
          f"{s['distance_mean']:.2e}, max {s['distance_max']:.2e} (last iterate {s['last_distance_mean']:.3f}, "
          f"σ_min·√(d−p) = {s['last_distance_expected']:.3f}), mean ‖x‖² {s['norm2_mean']:.3f} (p = "
          f"{s['norm2_expected']:.0f})")
    print(f"wrote {Path(args.out) / 'denoise.json'}, mse.png, rates.png, sampler.png")
    return 0
