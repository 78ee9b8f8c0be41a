"""``srr train --loss mcr2``: the MCR² options of ``srr train`` and the dispatch to :mod:`srr.training.mcr2`."""
from __future__ import annotations

import math

MCR2_BATCH_SIZE = 512  # MCR² needs many samples per class in a batch; used unless --batch-size is given


def add_mcr2_arguments(p) -> None:
    p.add_argument("--loss", choices=["ce", "mcr2"], default="ce",
                   help="ce: cross-entropy on the head (default); mcr2: MCR² on the L2-normalised features entering "
                        f"the final Linear, evaluated by nearest subspace and k-NN (default batch size {MCR2_BATCH_SIZE})")
    g = p.add_argument_group("MCR² (with --loss mcr2)")
    g.add_argument("--eps", type=float, default=math.sqrt(0.5),
                   help="distortion ε, not ε² (default sqrt(0.5): the official --eps 0.5 is ε²)")
    g.add_argument("--gamma1", type=float, default=1.0, help="scale inside the logdet of the expansion term R")
    g.add_argument("--gamma2", type=float, default=1.0, help="weight of the expansion term R")
    g.add_argument("--eval-every", type=int, default=1, help="evaluate the features every N epochs")


def run_mcr2(args, model, data, settings: dict, out: str) -> dict:
    """Train with MCR²; ``settings`` are the cross-entropy settings of ``srr train`` (label smoothing is unused)."""
    from ..training.mcr2 import MCR2Config, train_mcr2

    batch = args.batch_size if args.batch_size is not None else MCR2_BATCH_SIZE
    config = MCR2Config(epochs=settings["epochs"], batch_size=batch, lr=settings["lr"],
                        weight_decay=settings["weight_decay"], warmup_epochs=settings["warmup_epochs"],
                        shift=settings["shift"], seed=args.seed, device=args.device, eps=args.eps,
                        gamma1=args.gamma1, gamma2=args.gamma2, eval_every=args.eval_every)
    summary = train_mcr2(model, data, config, out, progress=not args.no_progress)
    print(f"MCR² features on the test split: nearest subspace {summary['test_nearest_subspace']:.4f}, "
          f"{config.k}-NN {summary['test_knn']:.4f} (test accuracy below = nearest subspace)")
    return summary
