"""``srr segment``: attention and principal-component masks against the object masks of scenes, per head of the
last layer (Jaccard), and the outlier tokens of every layer."""
from __future__ import annotations

NAME = "segment"
HELP = "emergent segmentation on --data scenes: 60%-mass attention masks per head, PCA masks, Jaccard, token norms"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "segment")
    p.add_argument("--images", type=int, default=64,
                   help="test scenes scored: the first N of the test split, or all of it if fewer (default 64)")
    p.add_argument("--fraction", type=float, default=0.6, help="attention mass the mask keeps (default 0.6)")
    p.add_argument("--outlier-ratio", type=float, default=3.0,
                   help="a token is an outlier above this many times its layer's median norm (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of a model built from a name")
    add_set_argument(p)


def run(args) -> int:
    from contextlib import ExitStack

    from ..analysis.segmentation import segmentation_report
    from .options import open_for_analysis

    with ExitStack() as stack:
        (src,), data, out = open_for_analysis(args, "segment", stack)
        r = segmentation_report(src, data, out, args.images, args.fraction, args.outlier_ratio)
    heads = "  ".join(f"{j:.3f}" for j in r["jaccard_per_head"])
    print(f"{r['model']} on {r['images']} scenes: Jaccard per head {heads}; best head {r['best_head']} "
          f"{r['jaccard_best_head']:.3f}, mean {r['jaccard_mean_over_heads']:.3f}, PCA {r['jaccard_pca']:.3f}; "
          f"outlier tokens (last layer) {r['outlier_fraction_last_layer']:.3%}")
    print(f"wrote {', '.join(str(p) for p in sorted(out.iterdir()) if not p.name.startswith('.'))}")
    return 0
