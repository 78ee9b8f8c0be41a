"""Argument helpers shared by the sub-commands."""
from __future__ import annotations

import ast

from ..errors import ConfigError


def parse_overrides(items: list[str] | None) -> dict:
    """``["dim=64", "patch_size=[1,4]", "pool=mean"]`` → ``{"dim": 64, "patch_size": [1, 4], "pool": "mean"}``."""
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def add_set_argument(parser) -> None:
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="override a model argument (repeatable), e.g. --set dim=64 --set patch_size=[1,4]")
