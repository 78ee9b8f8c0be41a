"""The registry of ``--data`` sources: ``register_source``, ``parse_spec``, ``load_data``, ``list_sources``.

A source is a loader registered under a name with what it takes: a path or not, and its options (see
:mod:`srr.data.spec` for the grammar). ``load_data(text)`` parses the text once, checks every value, and calls the
loader with the parsed :class:`~srr.data.spec.DataSpec`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import DataError
from .spec import DataSpec, Option, parse_arguments

__all__ = ["register_source", "parse_spec", "load_data", "list_sources", "Source", "TASKS"]

TASKS = {"image": "labelled images", "lm": "text for language models (--objective lm)",
         "sparse": "signals with their sparse codes (--objective sparse_coding)"}


@dataclass(frozen=True)
class Source:
    name: str
    loader: Callable[[DataSpec], Any]
    description: str
    path: bool = False
    options: Mapping[str, Option] = field(default_factory=dict)
    task: str = "image"  # "image" (ImageData), "lm" (srr.data.text.TextData) or "sparse" (srr.data.sparse.SparseCodes)


_SOURCES: dict[str, Source] = {}


def register_source(name: str, description: str, *, path: bool = False,
                    options: Mapping[str, Option | type] | None = None, task: str = "image"):
    """Decorator: register ``loader(spec: DataSpec)`` under ``name`` for ``--data name[:PATH][,options]``.

    ``path``: the source reads a user's path (``NAME:PATH``, required). ``options``: ``{key: Option(...)}`` or
    ``{key: type}`` (``int``, ``float``, ``bool``, ``str``). ``task="image"`` loaders return
    :class:`~srr.data.image_data.ImageData`; ``task="lm"`` loaders return text (``TextData``); ``task="sparse"``
    loaders return signals with their codes (:class:`~srr.data.sparse.SparseCodes`).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    declared = {k: v if isinstance(v, Option) else Option(v) for k, v in (options or {}).items()}

    def wrap(fn):
        _SOURCES[name] = Source(name, fn, description, bool(path), declared, task)
        return fn

    return wrap


def list_sources(task: str | None = None) -> dict[str, str]:
    return {n: s.description for n, s in sorted(_SOURCES.items()) if task is None or s.task == task}


def _source(text: Any) -> tuple[Source, str]:
    if not isinstance(text, str):
        raise DataError(f"a data specification is a string such as 'digits', got {type(text).__name__}")
    if not text.strip():
        raise DataError("empty data specification; try 'digits'")
    name, _, rest = text.partition(":")
    source = _SOURCES.get(name)
    if source is None:
        close = difflib.get_close_matches(name, list(_SOURCES), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise DataError(f"unknown data source {name!r}{hint} (known: {', '.join(sorted(_SOURCES))})")
    return source, rest


def _parse(source: Source, rest: str, text: str) -> DataSpec:
    path, options = parse_arguments(source.name, rest, takes_path=source.path, options=source.options)
    if source.path and not path:
        raise DataError(f"data source {source.name!r} needs a path: --data {source.name}:PATH")
    return DataSpec(source.name, path, options, text)


def parse_spec(text: str) -> DataSpec:
    """Parse ``NAME[:[PATH][,KEY=VALUE|,FLAG]*]`` against the declared options of source ``NAME``."""
    source, rest = _source(text)
    return _parse(source, rest, text)


def load_data(spec: str, task: str = "image"):
    """Load a data set from a spec: ``digits``, ``idx:DIR``, ``folder:DIR,size=64``, ``synthetic:k=4,...``.

    ``task`` names the kind of data the caller expects: ``"image"`` (:class:`~srr.data.image_data.ImageData`, the
    default), ``"lm"`` (text, e.g. ``text:PATH``) or ``"sparse"`` (``sparse:…``); a source of another kind raises
    :class:`DataError`.
    """
    source, rest = _source(spec)
    if source.task != task:
        raise DataError(f"data source {source.name!r} gives {TASKS.get(source.task, source.task)}, not "
                        f"{TASKS.get(task, task)}; sources for that: {', '.join(list_sources(task)) or 'none'}")
    return source.loader(_parse(source, rest, spec))
