"""``srr sparse-coding``: ISTA and FISTA against LISTA trained by the engine, and CRATE's ISTA block as one step of
non-negative ISTA (the work is :func:`srr.principles.sparse_coding_report`)."""
from __future__ import annotations

NAME = "sparse-coding"
HELP = "LASSO by ISTA and FISTA vs LISTA trained with srr's engine; CRATE's ISTA block as one non-negative ISTA step"


def add_arguments(p) -> None:
    from ..principles.sparse_coding import SparseCodingSettings
    from .options import add_settings_arguments

    p.add_argument("--out", default="runs/sparse-coding", help="output folder (default runs/sparse-coding)")
    add_settings_arguments(p, SparseCodingSettings)


def run(args) -> int:
    from pathlib import Path

    from ..principles.sparse_coding import SparseCodingSettings, sparse_coding_report
    from ..runfolder import output_path
    from .options import settings_from_args

    settings = settings_from_args(args, SparseCodingSettings)
    report = sparse_coding_report(output_path(args.out), settings)
    show = lambda v: "-" if v is None else str(v)  # noqa: E731
    print(f"{report['data']}, λ = {settings.lambd:g}: best NMSE within {settings.iterations} iterations ISTA "
          f"{report['best']['ista']:.2f} dB, FISTA {report['best']['fista']:.2f} dB")
    print(f"{'layers':>6} {'LISTA dB':>9} {'ISTA dB':>8} {'at init':>8} {'ISTA its':>9} {'FISTA its':>9}")
    for row in report["lista"]:
        same = row["ista_nmse_db_same_depth"]
        print(f"{row['depth']:6d} {row['nmse_db']:9.2f} {'-' if same is None else format(same, '.2f'):>8} "
              f"{row['nmse_db_init']:8.2f} {show(row['ista_iterations_to_reach']):>9} "
              f"{show(row['fista_iterations_to_reach']):>9}")
    c = report["crate_block"]
    print(f"CRATE's ISTA block (d = {c['dim']}, η = {c['eta']}, λ = {c['lambd']}): largest difference from one "
          f"non-negative ISTA step {c['max_abs_difference']:.1e}; ηL = {c['eta_times_L']:.3f}")
    print(f"wrote {Path(args.out) / 'sparse_coding.json'}, sparse_coding.png, crate_ista.png")
    return 0
