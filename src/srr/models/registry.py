"""One registry of named model configurations: ``create_model(name, **overrides)``, as timm's.

A registry entry binds a name (``crate_tiny``) to a model class, the keyword arguments of that configuration and a
one-line description. ``create_model`` checks every override against the class's constructor, builds the model and
records the full configuration on ``model.config`` so that :func:`srr.models.hub.save_pretrained` can rebuild it.
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError

__all__ = ["ModelEntry", "register_model", "create_model", "list_models", "get_entry", "count_parameters"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    task: str = "image"  # "image" (classification) or "lm" (causal language model)

    def arguments(self) -> list[str]:
        return [p for p in inspect.signature(self.builder).parameters if p not in ("self", "args", "kwargs")]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, builder: Callable[..., nn.Module], description: str, task: str = "image",
                   **defaults: Any) -> ModelEntry:
    """Register ``name`` as ``builder(**defaults)``; returns the entry. Re-registering a name is an error."""
    if name in _REGISTRY:
        raise ConfigError(f"model name {name!r} is already registered")
    entry = ModelEntry(name, builder, dict(defaults), description, task)
    unknown = set(defaults) - set(entry.arguments())
    if unknown:
        raise ConfigError(f"{name}: {builder.__name__} takes no argument(s) {sorted(unknown)}")
    _REGISTRY[name] = entry
    return entry


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an unknown name raises with the closest registered names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `srr models` lists them"
        raise ConfigError(f"unknown model {name!r}{hint}") from None


def list_models(pattern: str | None = None, task: str | None = None) -> list[str]:
    """Registered names, sorted; ``pattern`` is a shell-style filter (``"crate_*"``)."""
    import fnmatch

    names = sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered configuration ``name`` with ``overrides`` of its constructor arguments.

    Example: ``srr.create_model("crate_tiny", num_classes=10, image_size=32, patch_size=4)``.
    """
    entry = get_entry(name)
    allowed = entry.arguments()
    unknown = [k for k in overrides if k not in allowed]
    if unknown:
        raise ConfigError(f"{name} has no option(s) {unknown}; options are: {', '.join(allowed)}")
    signature = inspect.signature(entry.builder)
    for key, value in overrides.items():
        _check_type(name, key, value, entry.defaults.get(key, signature.parameters[key].default))
    kwargs = {**entry.defaults, **overrides}
    bound = signature.bind_partial(**kwargs)
    bound.apply_defaults()
    model = entry.builder(**bound.arguments)
    model.config = {"model": name, "args": _jsonable(dict(bound.arguments))}
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


def _check_type(model: str, key: str, value: Any, default: Any) -> None:
    """An override must have the kind of its default: a bool for a bool, an integer (or a list of integers, for
    sizes) for an int, a number for a float, a string for a string. No default (None) accepts anything."""
    def number(v, integer=False):
        return isinstance(v, int if integer else (int, float)) and not isinstance(v, bool)

    if default is None or default is inspect.Parameter.empty or value is None:
        return
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "True or False"
    elif number(default, integer=True):
        pair = isinstance(value, (list, tuple)) and bool(value) and all(number(v, True) for v in value)
        ok = number(value, True) or pair
        kind = "an integer"
    elif number(default):
        ok, kind = number(value), "a number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        raise ConfigError(f"{model}: option {key} expects {kind}, got {value!r}")


def _jsonable(args: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}
