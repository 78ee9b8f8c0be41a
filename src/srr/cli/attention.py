"""``srr attention``: attention maps of one held-out input per layer and head (images: over the patches; text: the
token patterns of one validation window)."""
from __future__ import annotations

NAME = "attention"
HELP = "attention maps of one held-out input per layer and head (grid, overlay on the image, JSON)"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "attention")
    p.add_argument("--index", type=int, default=0, help="index of the test image or validation window (default 0)")
    p.add_argument("--image-size", type=int,
                   help="resize the image (bicubic) to this size first; positions are interpolated to match")
    p.add_argument("--seed", type=int, default=None, help="seed of a model built from a name (default 0)")
    add_set_argument(p)


def run(args) -> int:
    from contextlib import ExitStack

    from ..analysis.attention import attention_report
    from ..checks import check_seed
    from ..errors import ConfigError
    from .options import open_for_analysis

    seed, args.seed = args.seed, check_seed(args.seed if args.seed is not None else 0)
    with ExitStack() as stack:
        (src,), data, out = open_for_analysis(args, "attention", stack)
        if seed is not None and src.path is not None:  # a flag that would change nothing is refused
            raise ConfigError(f"--seed initialises a model built from a name; {src.path} holds trained weights")
        report = attention_report(src, data, out, args.index, args.image_size)
    if src.task == "lm":
        print(f"{'layer':>5}  {'head':>4}  {'previous':>8}  {'first':>6}  {'entropy':>7}")
        for r in report["heads"]:
            print(f"{r['layer']:>5}  {r['head']:>4}  {r['previous_token']:>8.3f}  {r['first_token']:>6.3f}  "
                  f"{r['entropy']:>7.3f}")
    else:
        print(f"{'layer':>5}  {'head':>4}  {'patch mass':>10}  {'entropy':>7}  peak")
        for r in report["heads"]:
            print(f"{r['layer']:>5}  {r['head']:>4}  {r['patch_mass']:>10.3f}  {r['entropy']:>7.3f}  "
                  f"{tuple(r['peak'])}")
        if report.get("note"):
            print(f"note: {report['note']}; the maps show the mean of all tokens' attention rows")
    print(f"wrote {', '.join(str(p) for p in sorted(out.iterdir()) if not p.name.startswith('.'))}")
    return 0
