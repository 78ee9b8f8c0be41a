"""``srr train --task lm``: the options and the run of language-model training (called from :mod:`srr.cli.train`).

The task is ``--task`` when given; otherwise ``lm`` when ``--model`` names a language model or ``--data`` is a text
source, else ``image``.
"""
from __future__ import annotations

import re

DEMO_LM_MODEL = "crate_gpt_nano"
_IMAGE_ONLY = {"epochs": "--epochs", "warmup_epochs": "--warmup-epochs", "label_smoothing": "--label-smoothing",
               "shift": "--shift"}
_LM_ONLY = {"task": "--task", "steps": "--steps", "context": "--context", "warmup_steps": "--warmup-steps",
            "eval_interval": "--eval-interval", "eval_tokens": "--eval-tokens"}


def add_lm_arguments(p) -> None:
    g = p.add_argument_group("language models (--task lm)")
    g.add_argument("--task", choices=["image", "lm"],
                   help="image classification or causal language model (default: from --model and --data)")
    g.add_argument("--steps", type=int, help="optimiser steps (default 1000)")
    g.add_argument("--context", type=int, help="window length in tokens (default: the model's context)")
    g.add_argument("--warmup-steps", type=int, help="linear warm-up steps (default 5 %% of --steps)")
    g.add_argument("--eval-interval", type=int, help="steps between validations (default 100)")
    g.add_argument("--eval-tokens", type=int, help="validation tokens per evaluation (default 32768; 0: all)")


def wants_lm(args) -> bool:
    """Whether ``srr train`` runs the language-model task (see the module docstring)."""
    from ..data import list_sources
    from ..errors import ConfigError
    from ..models import get_entry

    if getattr(args, "task", None):
        task = args.task
    elif args.model:
        task = get_entry(args.model).task
    else:
        task = "lm" if (args.data or "").partition(":")[0] in list_sources("lm") else "image"
    if args.model and get_entry(args.model).task != task:
        kind = "a language model" if task == "image" else "an image model"
        raise ConfigError(f"{args.model} is {kind}, not one for --task {task}; `srr models` lists them")
    wrong = _IMAGE_ONLY if task == "lm" else {k: v for k, v in _LM_ONLY.items() if k != "task"}
    given = [flag for key, flag in wrong.items() if getattr(args, key, None) is not None]
    if task == "lm" and getattr(args, "loss", "ce") != "ce":
        given.append(f"--loss {args.loss}")
    if given:
        raise ConfigError(f"{', '.join(given)} do(es) not apply to --task {task}"
                          + ("; language models train for --steps" if task == "lm" else ""))
    return task == "lm"


def run_lm(args) -> int:
    import torch

    from ..data import load_text
    from ..errors import ConfigError
    from ..models import create_model
    from ..training import LMConfig, train_lm
    from .options import parse_overrides

    model_name = args.model or DEMO_LM_MODEL
    if not args.data:
        raise ConfigError("--task lm needs --data text:PATH (a plain text file)")
    given = {"steps": args.steps, "batch_size": args.batch_size, "context": args.context, "lr": args.lr,
             "weight_decay": args.weight_decay, "warmup_steps": args.warmup_steps,
             "eval_every": args.eval_interval, "eval_tokens": args.eval_tokens}
    config = LMConfig(seed=args.seed, device=args.device, **{k: v for k, v in given.items() if v is not None})
    config.check()
    data = load_text(args.data)
    torch.manual_seed(args.seed)
    model = create_model(model_name, **{**data.model_overrides(), **parse_overrides(args.set)})
    out = args.out or f"runs/{model_name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', args.data)}"
    s = train_lm(model, data, config, out, progress=not args.no_progress)
    print(f"{model_name} on {args.data}: validation {s['val_loss']:.4f} nats/token = {s['val_bpb']:.4f} bits/byte "
          f"({s['parameters']:,} parameters, {s['steps']} steps, {s['tokens_per_second']:,.0f} tokens/s, "
          f"{s['seconds']:.1f} s) -> {out}")
    return 0
