"""Recipe files: TOML tables of a model, a data spec, an objective, model settings and training settings.

Shipped recipes live in ``srr/recipes/`` (``--recipe NAME``, ``srr train --list-recipes``); any other file is named by
its path. Every key is checked when the file is read, naming the file: the model, the objective and every
``[train]`` setting (name and value, against the engine's and the objective's settings), the names of
``[model_args]`` (their values depend on the data, and are checked when the run is planned).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..io import read_structured

__all__ = ["Recipe", "load_recipe", "list_recipes", "RECIPE_DIR"]

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes"
MAX_RECIPE_BYTES = 1 << 20


@dataclass
class Recipe:
    name: str
    description: str = ""
    model: str | None = None
    data: str | None = None
    objective: str | None = None
    model_args: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    path: str = ""


def list_recipes() -> dict[str, str]:
    """Shipped recipes: name → description."""
    return {path.stem: load_recipe(path).description for path in sorted(RECIPE_DIR.glob("*.toml"))}


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read a shipped recipe by name or any TOML file by path; checks the form of every key (the values of
    ``[train]`` and ``[model_args]`` are checked when the run is planned, against the objective and the model)."""
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        shipped = RECIPE_DIR / f"{name_or_path}.toml"
        if not shipped.is_file():
            names = [p.stem for p in RECIPE_DIR.glob("*.toml")]
            close = difflib.get_close_matches(str(name_or_path), names, n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else f" (shipped: {', '.join(sorted(names))})"
            raise ConfigError(f"unknown recipe {str(name_or_path)!r}{hint}")
        path = shipped
    try:
        raw = read_structured(path, "a recipe", ConfigError, MAX_RECIPE_BYTES, toml=True)
    except ConfigError as exc:
        raise ConfigError(f"recipe {exc}") from None
    allowed = {"description", "model", "data", "objective", "model_args", "train"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(sorted(allowed))}"
        raise ConfigError(f"recipe {path}: unknown key {unknown[0]!r}{hint}")
    for key in ("description", "model", "data", "objective"):
        if key in raw and not isinstance(raw[key], str):
            raise ConfigError(f"recipe {path}: {key} must be a string, got {raw[key]!r}")
    for key in ("model_args", "train"):
        if not isinstance(raw.get(key, {}), dict):
            raise ConfigError(f"recipe {path}: [{key}] must be a table")
        for k, v in raw.get(key, {}).items():
            if isinstance(v, dict):
                raise ConfigError(f"recipe {path}: [{key}] {k} must be a value, got a table")
    recipe = Recipe(path.stem, raw.get("description", ""), raw.get("model"), raw.get("data"), raw.get("objective"),
                    dict(raw.get("model_args", {})), dict(raw.get("train", {})), str(path))
    _check_recipe(recipe, path)
    return recipe


def _check_recipe(recipe: Recipe, path: Path) -> None:
    """The model, the objective and every ``[train]`` setting (name and value) now, naming the file; the names of
    ``[model_args]`` (their values depend on the data, and are checked when the run is planned)."""
    from ..models import get_entry
    from ..objectives import get_objective
    from .resolve import resolve_settings  # the same resolution a run uses

    source = f"recipe {path}"
    try:
        entry = get_entry(recipe.model) if recipe.model else None
        objective = recipe.objective or ("lm" if entry is not None and entry.task == "lm" else "classification")
        objective_cls = get_objective(objective)
        resolve_settings(objective_cls, [(source, recipe.train)])
        if entry is not None:
            from ..settings import names

            fields_ = names(entry.config_class)
            unknown = [k for k in recipe.model_args if k not in fields_]
            if unknown:
                raise ConfigError(f"{recipe.model} has no option {unknown[0]!r}; options are: {', '.join(fields_)}")
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(text if text.startswith(source) else f"{source}: {text}") from None
