"""Typed settings: dataclasses whose fields carry their own help, bounds and choices, validated in one place.

Every configuration of srr (the training engine's, each objective's, each model family's) is a dataclass built with
:func:`option` fields. The same field metadata drives

* validation (:func:`validate`): the annotated type (int, float, str, bool, ``X | None``, an int or an ``[h, w]``
  pair), bounds, choices — one line naming the field and the value on any violation;
* reading from a mapping (:func:`from_mapping`): a recipe table, ``config.json`` or ``--set`` overrides, with
  "did you mean" for an unknown name;
* the command line (:mod:`srr.cli.flags` turns each field into a flag with its help text).

``resume`` in the metadata says whether a field may change when a run is resumed (``"free"``) or is fixed by the
run's set-up (``"fixed"``, the default): a resumed run refuses a fixed field given with another value.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from .checks import check_int, check_number
from .errors import ConfigError

__all__ = ["option", "validate", "from_mapping", "replace", "describe", "field_info", "Settings", "PAIR"]

PAIR = "pair"  # kind of a field that takes an int or a [h, w] pair of ints


def option(default: Any = MISSING, help: str = "", *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, choices: tuple | None = None, kind: str | None = None,
           resume: str = "fixed", flag: bool = True, example: Any = None, default_factory: Any = MISSING) -> Field:
    """A dataclass field with its help text and the checks of :func:`validate`.

    ``low``/``high`` bound numbers (``*_open`` for strict bounds), ``choices`` restricts strings, ``kind=PAIR`` takes
    an int or an ``[h, w]`` pair, ``resume`` is ``"fixed"`` or ``"free"``, ``flag=False`` keeps the field off the
    command line, ``example`` is a valid non-default value (used by the tests that try every flag).
    """
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "choices": tuple(choices) if choices else None, "kind": kind, "resume": resume, "flag": flag,
            "example": example}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Settings:
    """Base class of every settings dataclass: ``validate()`` after construction, ``to_dict()``."""

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _hints(cls) -> dict:
    cache = cls.__dict__.get("_srr_hints")
    if cache is None:
        cache = typing.get_type_hints(cls)
        setattr(cls, "_srr_hints", cache)
    return cache


def field_info(cls, name: str) -> dict:
    """``{"type", "optional", "help", …}`` of one field: the annotated base type, whether None is allowed, and the
    metadata of :func:`option`."""
    f = {x.name: x for x in fields(cls)}[name]
    hint = _hints(cls)[name]
    optional, base = False, hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        base = args[0] if len(args) == 1 else args
    meta = {"help": "", "low": None, "high": None, "low_open": False, "high_open": False, "choices": None,
            "kind": None, "resume": "fixed", "flag": True, "example": None, **dict(f.metadata)}
    if meta["kind"] is None:
        meta["kind"] = {bool: "bool", int: "int", float: "float", str: "str"}.get(base, "other")
    default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING
                                                          else None)
    return {"name": name, "type": base, "optional": optional, "default": default, **meta}


def check_value(cls, name: str, value: Any, where: str = "", label: str | None = None) -> Any:
    """The checked (and normalised: ints for integral floats, floats for ints) value of field ``name``; errors name
    it ``label`` (default ``where + name``)."""
    info = field_info(cls, name)
    label = label or f"{where}{name}"
    if value is None:
        if info["optional"]:
            return None
        raise ConfigError(f"{label} must be set (got None)")
    kind = info["kind"]
    bounds = dict(low=info["low"], high=info["high"])
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {value!r}")
        return value
    if kind == "int":
        return check_int(value, label, **bounds)
    if kind == "float":
        return check_number(value, label, low_open=info["low_open"], high_open=info["high_open"], **bounds)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{label} must be a string, got {value!r}")
        if info["choices"] and value not in info["choices"]:
            close = difflib.get_close_matches(value, info["choices"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{label} must be one of {', '.join(info['choices'])}; got {value!r}{hint}")
        return value
    if kind == PAIR:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ConfigError(f"{label} must be an integer or a pair [h, w], got {value!r}")
            return [check_int(v, label, **bounds) for v in value]
        return check_int(value, label, **bounds)
    return value


def validate(obj) -> Any:
    """Check every field of the dataclass instance ``obj`` (normalising numbers in place); returns ``obj``."""
    cls = type(obj)
    for f in fields(obj):
        value = check_value(cls, f.name, getattr(obj, f.name))
        object.__setattr__(obj, f.name, value)
    checker = getattr(obj, "check", None)
    if checker is not None:
        checker()
    return obj


def _suggest(key: str, names) -> str:
    close = difflib.get_close_matches(str(key), list(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def from_mapping(cls, mapping: dict, source: str = "settings", base: Any = None):
    """An instance of the settings dataclass ``cls`` from ``mapping`` (over ``base``'s values, else the defaults).
    Unknown names and bad values raise one line naming ``source``."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: expected a table of settings, got {type(mapping).__name__}")
    names = [f.name for f in fields(cls) if f.init]
    unknown = [k for k in mapping if k not in names]
    if unknown:
        raise ConfigError(f"{source}: unknown setting {unknown[0]!r}{_suggest(unknown[0], names)}")
    values = {f.name: getattr(base, f.name) for f in fields(cls) if f.init} if base is not None else {}
    for key, value in mapping.items():
        values[key] = check_value(cls, key, value, where=f"{source}: ")
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def replace(obj, **changes):
    """``dataclasses.replace`` with the checks (and one-line errors for unknown names)."""
    return from_mapping(type(obj), changes, "settings", base=obj)


def describe(obj) -> dict:
    """``{field: value}`` of a settings instance, as plain JSON values."""
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]
