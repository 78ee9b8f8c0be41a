"""``srr train --loss mcr2``: the MCR² options of ``srr train`` and the dispatch to :mod:`srr.training.mcr2`."""
from __future__ import annotations

import math

MCR2_BATCH_SIZE = 512  # MCR² needs many samples per class in a batch; used unless --batch-size is given


def add_mcr2_arguments(p) -> None:
    p.add_argument("--loss", choices=["ce", "mcr2"], default="ce",
                   help="ce: cross-entropy on the head (default); mcr2: MCR² on the L2-normalised features entering "
                        f"the final Linear, evaluated by nearest subspace and k-NN (default batch size {MCR2_BATCH_SIZE})")
    g = p.add_argument_group("MCR² (with --loss mcr2)")
    # defaults are None so that a flag given without --loss mcr2 is refused (check_mcr2_flags), not ignored
    g.add_argument("--eps", type=float, help="distortion ε, not ε² (default sqrt(0.5): the official --eps 0.5 is ε²)")
    g.add_argument("--gamma1", type=float, help="scale inside the logdet of the expansion term R (default 1)")
    g.add_argument("--gamma2", type=float, help="weight of the expansion term R (default 1)")
    g.add_argument("--eval-every", type=int, help="evaluate the features every N epochs (default 1)")


MCR2_DEFAULTS = {"eps": math.sqrt(0.5), "gamma1": 1.0, "gamma2": 1.0, "eval_every": 1}


def check_mcr2_flags(args) -> None:
    """Refuse MCR² flags given with another loss (they would be silently ignored)."""
    from ..errors import ConfigError

    given = [f"--{k.replace('_', '-')}" for k in MCR2_DEFAULTS if getattr(args, k, None) is not None]
    if given and getattr(args, "loss", "ce") != "mcr2":
        raise ConfigError(f"{', '.join(given)}: MCR² option(s), only for --loss mcr2 (the loss is {args.loss})")


def run_mcr2(args, model, data, settings: dict, out: str) -> dict:
    """Train with MCR²; ``settings`` are the cross-entropy settings of ``srr train`` (label smoothing is unused)."""
    from ..training.mcr2 import MCR2Config, train_mcr2

    batch = args.batch_size if args.batch_size is not None else MCR2_BATCH_SIZE
    opts = {k: v if (v := getattr(args, k, None)) is not None else default for k, default in MCR2_DEFAULTS.items()}
    config = MCR2Config(epochs=settings["epochs"], batch_size=batch, lr=settings["lr"],
                        weight_decay=settings["weight_decay"], warmup_epochs=settings["warmup_epochs"],
                        shift=settings["shift"], seed=args.seed, device=args.device, **opts)
    summary = train_mcr2(model, data, config, out, progress=not args.no_progress)
    print(f"MCR² features on the test split: nearest subspace {summary['test_nearest_subspace']:.4f}, "
          f"{config.k}-NN {summary['test_knn']:.4f} (test accuracy below = nearest subspace)")
    return summary
