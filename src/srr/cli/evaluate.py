"""``srr evaluate``: a saved model on a data split: loss, accuracy, per-class accuracy and the confusion matrix (or,
for a language model, nats per token and bits per byte)."""
from __future__ import annotations

NAME = "evaluate"
HELP = "evaluate a saved model on a data split (accuracy, loss, per-class accuracy, confusion matrix; bits per byte)"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "evaluation")
    p.add_argument("--batch-size", type=int, default=256,
                   help="images per forward pass (default 256); a language model takes at most 64 windows at once")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="language models: at most this many validation targets (default 0: the whole split)")
    p.add_argument("--seed", type=int, default=None, help="seed of a model built from a name (default 0)")
    add_set_argument(p)


def run(args) -> int:
    from contextlib import ExitStack

    from ..analysis.evaluate import evaluate
    from ..checks import check_int, check_seed
    from ..errors import ConfigError
    from .options import open_for_analysis

    max_tokens = check_int(args.max_tokens if args.max_tokens is not None else 0, "--max-tokens", low=0,
                           high=1 << 40)
    seed, args.seed = args.seed, check_seed(args.seed if args.seed is not None else 0)
    with ExitStack() as stack:
        (src,), data, out = open_for_analysis(args, "evaluation", stack)
        if args.max_tokens is not None and src.task != "lm":  # a flag that would change nothing is refused
            raise ConfigError(f"--max-tokens applies to language models; {src.name} is an image classifier")
        if seed is not None and src.path is not None:
            raise ConfigError(f"--seed initialises a model built from a name; {src.path} holds trained weights")
        report = evaluate(src, data, out, args.batch_size, max_tokens)
    if src.task == "lm":
        print(f"{report['model']} on {report['data']} ({report['tokens']:,} validation tokens): "
              f"{report['loss']:.4f} nats/token = {report['bits_per_byte']:.4f} bits/byte")
    else:
        print(f"{report['model']} on {report['data']} ({report['items']:,} {report['split']} images): accuracy "
              f"{report['accuracy']:.4f}, loss {report['loss']:.4f}")
        print(f"{'class':>5}  {'items':>6}  {'accuracy':>8}")
        for k, (n, acc) in enumerate(zip(report["per_class_items"], report["per_class_accuracy"])):
            print(f"{k:>5}  {n:>6}  {'-' if acc is None else f'{acc:.4f}':>8}")
    print(f"wrote {', '.join(str(p) for p in sorted(out.iterdir()) if not p.name.startswith('.'))}")
    return 0
