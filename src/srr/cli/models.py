"""``srr models``: every registered model with its parameter count and description."""
from __future__ import annotations

NAME = "models"
HELP = "list registered models with their parameter counts"


def add_arguments(p) -> None:
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'crate_*'")


def run(args) -> int:
    import torch

    from ..models import count_parameters, create_model, get_entry, list_models

    names = list_models(args.pattern)
    if not names:
        from ..errors import ConfigError

        raise ConfigError(f"no registered model matches {args.pattern!r}; `srr models` lists them all")
    rows = []
    for name in names:
        with torch.device("meta"):  # count without allocating memory
            n = count_parameters(create_model(name))
        rows.append((name, f"{n:,}", get_entry(name).description))
    w0 = max([len("name")] + [len(r[0]) for r in rows])
    w1 = max([len("parameters")] + [len(r[1]) for r in rows])
    print(f"{'name':<{w0}}  {'parameters':>{w1}}  description")
    for r in rows:
        print(f"{r[0]:<{w0}}  {r[1]:>{w1}}  {r[2]}")
    return 0
