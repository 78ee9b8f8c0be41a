"""One registry of named model configurations, as timm's: plain decorated functions, found by ``grep "def crate_tiny"``.

A registry function takes no argument and returns the configuration dataclass of its model (its docstring's first
line is the description ``srr models`` prints)::

    @register_model
    def crate_tiny() -> CRATE.Config:
        \"\"\"CRATE-Tiny (paper, ImageNet 224/16).\"\"\"
        return CRATE.Config(dim=384, depth=12, heads=6)

:func:`get_config` applies overrides to it (every value checked, unknown names refused with the list of options);
:func:`create_model` builds the model after checking that its parameters fit in memory, and records the registry
name (``model.name``) and the configuration (``model.config``) that :func:`~srr.models.hub.save_pretrained` writes.
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from ..checks import check_memory
from ..errors import ConfigError
from ..settings import from_mapping, names

__all__ = ["ModelEntry", "register_model", "get_entry", "get_config", "create_model", "list_models",
           "count_parameters", "parameter_count"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    fn: Callable[[], Any]
    description: str

    @property
    def config_class(self) -> type:
        return type(self.fn())

    @property
    def task(self) -> str:
        return self.config_class.task

    @property
    def defaults(self) -> dict:
        return self.fn().to_dict()


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Register ``fn`` under its own name (a decorator; returns ``fn`` unchanged)."""
    name = fn.__name__
    if name in _REGISTRY:
        raise ConfigError(f"model name {name!r} is already registered")
    doc = (fn.__doc__ or "").strip().splitlines()
    _REGISTRY[name] = ModelEntry(name, fn, doc[0].strip() if doc else "")
    return fn


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an unknown name raises with the closest registered names."""
    if not isinstance(name, str):
        raise ConfigError(f"a model name must be a string, got {name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `srr models` lists them"
        raise ConfigError(f"unknown model {name!r}{hint}") from None


def list_models(pattern: str | None = None, task: str | None = None) -> list[str]:
    """Registered names, sorted. ``pattern`` is a shell-style filter (``"crate_*"``); without wildcards it matches
    as a substring (``"nano"``)."""
    found = sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)
    if pattern is None:
        return found
    if not any(c in pattern for c in "*?["):
        return [n for n in found if pattern in n]
    return [n for n in found if fnmatch.fnmatch(n, pattern)]


def get_config(name: str, **overrides: Any):
    """The configuration of ``name`` with ``overrides`` applied and checked."""
    entry = get_entry(name)
    base = entry.fn()
    unknown = [k for k in overrides if k not in names(type(base))]
    if unknown:
        raise ConfigError(f"{name} has no option {unknown[0]!r}; options are: {', '.join(names(type(base)))}")
    return from_mapping(type(base), overrides, name, base=base) if overrides else base


def parameter_count(config) -> int:
    """Parameters of the model ``config`` builds, counted on the meta device (nothing allocated)."""
    import torch

    if hasattr(config, "parameter_estimate"):
        return config.parameter_estimate()
    with torch.device("meta"):
        return count_parameters(config.build())


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered configuration ``name`` with ``overrides`` of its fields, e.g.
    ``srr.create_model("crate_tiny", num_classes=10, image_size=32, patch_size=4)``. The parameters (float32) are
    checked against the memory this machine can give before anything is allocated."""
    config = get_config(name, **overrides)
    what = f"building {name} (its parameters)"
    if hasattr(config, "parameter_floor"):  # refuse the far-too-large before counting on the meta device
        check_memory(4 * config.parameter_floor(), what)
    check_memory(getattr(config, "parameter_bytes", None) or 4 * parameter_count(config), what)
    model = config.build()
    model.name = name
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
