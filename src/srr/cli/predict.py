"""``srr predict``: the top-k classes of image files under a saved image classifier, the images prepared with the
run's own preprocessing."""
from __future__ import annotations

NAME = "predict"
HELP = "top-k classes with probabilities for image files (any Pillow format), prepared as the run's data were"


def add_arguments(p) -> None:
    p.add_argument("source", metavar="RUN", help="a saved model or run folder, or a Hugging Face Hub id org/name")
    p.add_argument("files", metavar="FILE", nargs="+", help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP, …)")
    p.add_argument("--top-k", type=int, default=5, help="classes to show per image (default 5, at most the classes)")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")


def run(args) -> int:
    import json
    from contextlib import ExitStack
    from pathlib import Path

    from ..analysis.evaluate import predict
    from ..analysis.runs import open_source
    from ..errors import ConfigError
    from ..runfolder import RunLock

    with ExitStack() as stack:
        if Path(args.source).is_dir():
            stack.enter_context(RunLock(args.source, exclusive=False))
        src = open_source(args.source)
        if src.path is None:
            raise ConfigError(f"{args.source} is a registry name; predict needs a trained model (a run folder, a "
                              "saved model or a Hub id)")
        top_k = min(args.top_k, int(getattr(src.model.config, "num_classes", args.top_k)))
        results = predict(src, args.files, top_k)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        ranked = ", ".join(f"{t['class']} ({t['probability']:.3f})" for t in r["top"])
        print(f"{r['file']}: {ranked}")
    return 0
