"""The grammar of a ``--data`` specification: ``NAME[:[PATH][,KEY=VALUE|,FLAG]*]``.

``NAME`` is a registered source. After the colon, the trailing comma-separated items whose key is an option the
source declares are its options (``KEY=VALUE``, or ``FLAG`` alone for a true/false option); what precedes them is
the path (which may itself hold commas). So ``folder:/data/imgs,size=64`` is the path ``/data/imgs`` with
``size = 64``, ``cifar100:DIR,coarse`` sets the flag ``coarse``, and ``synthetic:k=4,d=32`` (a source without a
path) takes options only.

Every value is type-checked and range-checked here, where it is parsed, with one line that names the option: an
unknown option lists the known ones; ``size=0``, ``k=abc``, ``noise=nan`` or ``n=-1`` are refused before anything is
read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..checks import check_int, check_number
from ..errors import DataError

__all__ = ["Option", "DataSpec", "parse_arguments"]

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_KEY_VALUE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Option:
    """A declared option of a source: its type (``int``, ``float``, ``bool`` or ``str``), default and range."""

    kind: type = str
    default: Any = None
    low: float | None = None
    high: float | None = None

    def __post_init__(self):
        if self.kind not in (int, float, bool, str):
            raise TypeError(f"an option is int, float, bool or str, not {self.kind!r}")
        if self.kind is bool and self.default is None:
            object.__setattr__(self, "default", False)  # a flag is off unless given

    def parse(self, source: str, key: str, text: str | None) -> Any:
        """The value of ``KEY=text`` (``text`` is ``None`` for a bare ``KEY``), checked against the range."""
        name = f"{source} option {key}"
        if self.kind is bool:
            if text is None:
                return True
            if text.strip().lower() in _TRUE + _FALSE:
                return text.strip().lower() in _TRUE
            raise DataError(f"{name} is a flag (',{key}' or '{key}=true|false'), got {text!r}")
        if text is None or not text.strip():
            raise DataError(f"{name} needs a value: ',{key}=VALUE'")
        if self.kind is int:
            if not re.fullmatch(r"\s*[+-]?\d{1,30}\s*", text):
                raise DataError(f"{name} must be an integer, got {text!r}")
            return check_int(int(text), name, low=self.low, high=self.high, error=DataError)
        if self.kind is float:
            try:
                value = float(text)
            except ValueError:
                raise DataError(f"{name} must be a number, got {text!r}") from None
            return check_number(value, name, low=self.low, high=self.high, error=DataError)
        return text


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` specification: the source ``name``, its ``path`` (or ``None``), every declared option
    (defaults filled in) and ``text``, the user's string as given (what a loaded data set records as ``spec``)."""

    name: str
    path: str | None
    options: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text


def _options_list(options: Mapping[str, Option]) -> str:
    return ", ".join(f"{k}" if o.kind is bool else f"{k}=" for k, o in options.items()) or "none"


def parse_arguments(source: str, rest: str, *, takes_path: bool,
                    options: Mapping[str, Option]) -> tuple[str | None, dict[str, Any]]:
    """Split what follows ``NAME:`` into the path and the checked option values (defaults filled in)."""
    items = rest.split(",") if rest else []
    given: dict[str, Any] = {}
    while items:
        if not items[-1].strip():  # a trailing or doubled comma
            items.pop()
            continue
        key, eq, value = items[-1].partition("=")
        if key.strip() not in options:
            break
        key = key.strip()
        if key in given:
            raise DataError(f"{source} option {key} is given twice")
        given[key] = options[key].parse(source, key, value if eq else None)
        items.pop()
    if not takes_path:
        if items and not options:
            raise DataError(f"data source {source!r} takes no argument, got {','.join(items)!r}")
        if items:
            raise DataError(f"bad {source} option {items[-1]!r}: not one of its options ({_options_list(options)})")
        path = None
    else:
        path = ",".join(items) or None
        last = items[-1] if len(items) > 1 else ""
        if options and _KEY_VALUE.match(last) and not Path(path).expanduser().exists():
            raise DataError(f"bad {source} option {last!r}: not one of its options ({_options_list(options)})")
    values = {k: o.default for k, o in options.items()}
    values.update(given)
    return path, values
