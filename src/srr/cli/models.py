"""``srr models``: every registered model with its parameter count and description."""
from __future__ import annotations

NAME = "models"
HELP = "list registered models with their parameter counts"


def add_arguments(p) -> None:
    p.add_argument("pattern", nargs="?", help="a substring ('nano') or a shell-style filter ('crate_*')")


def run(args) -> int:
    from ..models import get_config, get_entry, list_models, parameter_count

    names = list_models(args.pattern)
    if not names:
        from ..errors import ConfigError

        raise ConfigError(f"no registered model matches {args.pattern!r}; `srr models` lists them all")
    rows = []
    for name in names:
        n = parameter_count(get_config(name))  # counted on the meta device: nothing allocated
        entry = get_entry(name)
        rows.append((name, entry.task, f"{n:,}", entry.description))
    w0 = max([len("name")] + [len(r[0]) for r in rows])
    w1 = max([len("task")] + [len(r[1]) for r in rows])
    w2 = max([len("parameters")] + [len(r[2]) for r in rows])
    print(f"{'name':<{w0}}  {'task':<{w1}}  {'parameters':>{w2}}  description")
    for r in rows:
        print(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]:>{w2}}  {r[3]}")
    return 0
