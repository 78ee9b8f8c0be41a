"""Argument helpers shared by the sub-commands (the work itself is in :mod:`srr.analysis`)."""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from ..analysis.runs import parse_overrides

__all__ = ["parse_overrides", "add_set_argument", "add_source_arguments", "open_for_analysis",
           "add_settings_arguments", "settings_from_args"]


def add_set_argument(parser) -> None:
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="override a model setting (repeatable), e.g. --set dim=64 --set patch_size=[1,4]")


def add_source_arguments(parser, subdir: str, several: bool = False) -> None:
    """``DIR_OR_MODEL``, ``--data`` and ``--out`` of the analysis commands."""
    parser.add_argument("source", metavar="DIR_OR_MODEL", nargs="+" if several else None,
                        help="a saved model or run folder, or a registered model name" +
                             (" (several: compared in one plot)" if several else ""))
    parser.add_argument("--data", help="data spec (default: the data the model was trained on, else digits)")
    parser.add_argument("--out", help=f"output folder (default DIR/{subdir}, or runs/{subdir}-NAME)")


def open_for_analysis(args, subdir: str, stack: ExitStack, sources: list[str] | None = None):
    """Open the sources of an analysis command, their data and its output folder; every run folder read is held
    with a shared lock (refused while a training owns it) until ``stack`` closes. Returns ``(sources, data, out)``."""
    from ..analysis.runs import open_source, source_data
    from ..runfolder import RunLock, check_output_folder, output_path

    names = sources if sources is not None else [args.source]
    opened = []
    for name in names:
        if Path(name).is_dir():
            stack.enter_context(RunLock(name, exclusive=False))
        opened.append(open_source(name, args.set, getattr(args, "seed", 0), args.data))
    first = opened[0]
    if args.out is not None:
        out = output_path(args.out)
    elif len(opened) == 1 and first.path is not None and Path(names[0]).is_dir():  # not into a Hub cache
        out = first.path / subdir
    else:
        out = Path("runs") / f"{subdir}-{'-'.join(s.name for s in opened)}"
    check_output_folder(out, [s.path for s in opened if s.path is not None and s.path.resolve() != out.resolve()
                              and not out.resolve().is_relative_to(s.path.resolve())])
    return opened, source_data(first, args.data), out


def add_settings_arguments(parser, cls) -> None:
    """One flag per field of the settings dataclass ``cls`` (``sigma_min`` → ``--sigma-min``; a bool gets
    ``--flag``/``--no-flag``), with its help text and default; a flag not given stays None."""
    import argparse
    from dataclasses import fields

    from ..settings import field_info

    for f in fields(cls):
        info = field_info(cls, f.name)
        flag = "--" + f.name.replace("_", "-")
        text = f"{info['help']} (default {info['default']})".replace("%", "%%")
        if info["kind"] == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            kind = {"int": int, "float": float}.get(info["kind"], str)
            metavar = ("{" + ",".join(info["choices"]) + "}") if info["choices"] else f.name.upper()
            parser.add_argument(flag, dest=f.name, type=kind, default=None, metavar=metavar, help=text)


def settings_from_args(args, cls):
    """The settings ``cls`` with the flags given on the command line, each checked and named by its flag."""
    from dataclasses import fields

    from ..settings import check_value

    given = {f.name: check_value(cls, f.name, getattr(args, f.name), label="--" + f.name.replace("_", "-"))
             for f in fields(cls) if getattr(args, f.name, None) is not None}
    return cls(**given)  # the relations between fields (rank <= d, …) are checked here
