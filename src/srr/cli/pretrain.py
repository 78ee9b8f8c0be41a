"""``srr pretrain``: self-supervised pre-training of a registered image backbone (SimDINO, DINO, unsupervised MCR²).

``--method`` names the objective (``simdino``, ``dino``, or ``mcr2`` for ``mcr2_views``); everything else is
``srr train``'s: the same engine (resume, accumulation, data parallelism under ``torchrun``, mixed precision), the
same settings flags and run folder, and the backbone saved with ``save_pretrained``.
"""
from __future__ import annotations

NAME = "pretrain"
HELP = "self-supervised pre-training of an image backbone: --method simdino, dino or mcr2 (unsupervised MCR²)"

METHODS = {"simdino": "simdino", "dino": "dino", "mcr2": "mcr2_views"}


def add_arguments(p) -> None:
    from .flags import add_settings_flags
    from .options import add_set_argument

    p.add_argument("--method", choices=sorted(METHODS), help="simdino (default), dino, or mcr2 (the views of each "
                                                             "image as its group)")
    p.add_argument("--recipe", help="recipe name (see srr train --list-recipes) or TOML file")
    p.add_argument("--model", help="registered image model (see `srr models`); default: the method's")
    p.add_argument("--data", help="data spec (labels are used only for the evaluation); default: the recipe's, "
                                  "else digits")
    p.add_argument("--out", help="output folder (default runs/MODEL-DATA); refused if it holds another run")
    p.add_argument("--overwrite", action="store_true", help="replace the srr output of another run in --out")
    p.add_argument("--resume", metavar="DIR", help="continue the pre-training in DIR from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar: one line per epoch")
    add_set_argument(p)
    add_settings_flags(p)


def run(args) -> int:
    from ..errors import ConfigError
    from . import train

    if args.resume is not None and args.method is not None:
        raise ConfigError("--method cannot change a resumed run: --resume continues the run as it was set up")
    args.objective = None if args.resume is not None else METHODS[args.method or "simdino"]
    if args.recipe is None and args.resume is None and args.data is None:
        args.data = "digits"
    args.list_recipes = False
    return train.run(args)


__all__ = ["NAME", "HELP", "add_arguments", "run", "METHODS"]
