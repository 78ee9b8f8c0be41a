"""``srr train``: train a registered model on a data set and save it with its metrics."""
from __future__ import annotations

import re

NAME = "train"
HELP = "train a model (default: the CPU demo, CRATE on digits)"

# The CPU demo: tuned so that `srr train` reaches >= 97 % on digits in well under three minutes on two cores.
DEMO_MODEL, DEMO_DATA = "crate_nano", "digits"
DEMO_OVERRIDES = {"dim": 128, "heads": 8}  # applied only when neither --model nor --data is given
DEMO_SETTINGS = {"epochs": 80, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "warmup_epochs": 1.0,
                 "label_smoothing": 0.0, "shift": 0}


def add_arguments(p) -> None:
    from .options import add_set_argument
    from .train_lm import add_lm_arguments

    p.add_argument("--model", help="registered model name (see `srr models`); default crate_nano")
    p.add_argument("--data", help="data spec: digits, idx:DIR, synthetic[:k=4,...], text:FILE; default digits")
    p.add_argument("--out", help="output folder (default runs/MODEL-DATA)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate of AdamW")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--shift", type=int, help="random translation augmentation, in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_set_argument(p)
    from .mcr2_options import add_mcr2_arguments

    add_mcr2_arguments(p)
    add_lm_arguments(p)


def run(args) -> int:
    import torch

    from ..data import load_data
    from ..errors import ConfigError
    from ..models import create_model
    from ..training import TrainConfig, train
    from .options import parse_overrides
    from .train_lm import run_lm, wants_lm

    if wants_lm(args):
        return run_lm(args)
    model_name, spec = args.model or DEMO_MODEL, args.data or DEMO_DATA
    settings = dict(DEMO_SETTINGS)
    given = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
             "warmup_epochs": args.warmup_epochs, "label_smoothing": args.label_smoothing, "shift": args.shift}
    settings.update({k: v for k, v in given.items() if v is not None})
    if settings["epochs"] < 1 or settings["batch_size"] < 1 or settings["lr"] <= 0:
        raise ConfigError("--epochs and --batch-size must be positive and --lr > 0")
    data = load_data(spec)
    torch.manual_seed(args.seed)
    demo = args.model is None and args.data is None
    overrides = {**(DEMO_OVERRIDES if demo else {}), **data.model_overrides(), **parse_overrides(args.set)}
    model = create_model(model_name, **overrides)
    out = args.out or f"runs/{model_name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec)}"
    if args.loss == "mcr2":
        from .mcr2_options import run_mcr2

        summary = run_mcr2(args, model, data, settings, out)
    else:
        config = TrainConfig(seed=args.seed, device=args.device, **settings)
        summary = train(model, data, config, out, progress=not args.no_progress)
    print(f"{model_name} on {spec}: test accuracy {summary['test_accuracy']:.4f} "
          f"({summary['parameters']:,} parameters, {summary['seconds']:.1f} s) -> {out}")
    return 0
