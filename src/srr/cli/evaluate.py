"""``srr evaluate``: a saved model on a data split: loss, accuracy, per-class accuracy and the confusion matrix (or,
for a language model, nats per token and bits per byte)."""
from __future__ import annotations

NAME = "evaluate"
HELP = "evaluate a saved model on a data split (accuracy, loss, per-class accuracy, confusion matrix; bits per byte)"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "evaluation")
    p.add_argument("--batch-size", type=int, default=256, help="images (or windows) per forward pass (default 256)")
    p.add_argument("--max-tokens", type=int, default=0,
                   help="language models: at most this many validation targets (default 0: the whole split)")
    p.add_argument("--seed", type=int, default=0, help="seed of a model built from a name")
    add_set_argument(p)


def run(args) -> int:
    from contextlib import ExitStack

    from ..analysis.evaluate import evaluate
    from ..checks import check_int
    from .options import open_for_analysis

    check_int(args.max_tokens, "--max-tokens", low=0, high=1 << 40)
    with ExitStack() as stack:
        (src,), data, out = open_for_analysis(args, "evaluation", stack)
        report = evaluate(src, data, out, args.batch_size, args.max_tokens)
    if src.task == "lm":
        print(f"{report['model']} on {report['data']} ({report['tokens']:,} validation tokens): "
              f"{report['loss']:.4f} nats/token = {report['bits_per_byte']:.4f} bits/byte")
    else:
        print(f"{report['model']} on {report['data']} ({report['items']:,} {report['split']} images): accuracy "
              f"{report['accuracy']:.4f}, loss {report['loss']:.4f}")
        print(f"{'class':>5}  {'items':>6}  {'accuracy':>8}")
        for k, (n, acc) in enumerate(zip(report["per_class_items"], report["per_class_accuracy"])):
            print(f"{k:>5}  {n:>6}  {'-' if acc is None else f'{acc:.4f}':>8}")
    print(f"wrote {', '.join(str(p) for p in sorted(out.iterdir()))}")
    return 0
