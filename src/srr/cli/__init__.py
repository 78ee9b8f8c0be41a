"""The ``srr`` command: a thin shell over the library. Each sub-command lives in its own module."""
from __future__ import annotations

import argparse
import sys

from ..errors import SrrError
from . import (analyze, ansatz, attention, circuits, compare, convert, denoise, evaluate, export, generate, models,
               predict, pretrain, redunet, report, reproduce, segment, sparse_coding, synthetic, train)

# Each module provides NAME, HELP, add_arguments(parser) and run(args) -> int.
COMMANDS = [train, pretrain, analyze, attention, circuits, ansatz, synthetic, denoise, sparse_coding, report, models,
            redunet, generate, evaluate, predict, compare, export, convert, reproduce, segment]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> Parser:
    from ..version import __version__

    parser = Parser(prog="srr", description="White-box deep networks from (sparse) rate reduction.")
    parser.add_argument("--version", action="version", version=f"srr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while the parser imports the sub-commands: one line, not a traceback
        sys.stderr.write("srr: interrupted\n")
        return 130


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    import warnings

    from ..training.engine import RunInterrupted

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            code = int(args.run(args) or 0)
        except RunInterrupted as exc:
            sys.stderr.write(f"srr {args.command}: {' '.join(str(exc).split())}\n")
            return 130
        except SrrError as exc:
            message = " ".join(str(exc).split())  # one line, even when a message quotes a multi-line library error
            sys.stderr.write(f"srr {args.command}: error: {message}\n")  # warnings raised on the way are dropped
            return 2
        except BrokenPipeError:  # the reader of our output went away (`srr models | head`): nothing to say
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except OSError as exc:  # the file system said no (missing, permissions, full disk, read-only): one line too
            sys.stderr.write(f"srr {args.command}: error: {exc.strerror or exc}: {exc.filename or ''}\n")
            return 2
        except KeyboardInterrupt:
            sys.stderr.write(f"srr {args.command}: interrupted\n")
            return 130
    seen = set()
    for w in caught:  # after a success, each distinct warning once, as one line
        text = " ".join(str(w.message).split())
        if text not in seen:
            seen.add(text)
            sys.stderr.write(f"srr {args.command}: warning: {text}\n")
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
