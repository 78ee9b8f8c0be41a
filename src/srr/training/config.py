"""The training engine's settings (:class:`TrainConfig`) and the recipe files (TOML) that fill them.

A recipe is a TOML file::

    description = "CRATE-T on CIFAR-10 from scratch"
    model = "crate_tiny"                 # registry name
    data = "cifar10:data/cifar-10-batches-py"
    objective = "classification"         # default: from the model (classification for images, lm for text)
    [model_args]                         # configuration overrides of the model (after the data's own)
    patch_size = 4
    [train]                              # engine and objective settings
    epochs = 200
    optimizer = "adamw"

Precedence, lowest first: the engine's defaults, the objective's defaults (MCR² batches of 512, …), the recipe, then
the command line. Recipes ship in ``srr/recipes/`` (``--recipe NAME``); any other file is named by its path.
"""
from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..settings import Settings, option

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["TrainConfig", "Recipe", "load_recipe", "list_recipes", "RECIPE_DIR", "MAX_SEED"]

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes"
MAX_SEED = (1 << 63) - 1
MAX_RECIPE_BYTES = 1 << 20


@dataclass
class TrainConfig(Settings):
    """Everything the engine does the same way for every objective. ``batch_size`` is the global batch of one
    optimiser step: all processes and all accumulated micro-batches together, so a recipe means the same run on 1 or
    N processes. ``resume="free"`` settings may change when a run is resumed; the others are fixed by its set-up."""

    batch_size: int = option(64, "global batch per optimiser step (all processes, all micro-batches)", low=1,
                             high=1 << 31)
    lr: float = option(1e-3, "peak learning rate", low=0.0, high=10.0, low_open=True)
    min_lr_ratio: float = option(0.0, "cosine floor as a fraction of --lr", low=0.0, high=1.0)
    weight_decay: float = option(0.05, "weight decay (never on norms, biases, embeddings, positions, gains)", low=0.0,
                                 high=100.0)
    optimizer: str = option("adamw", "adamw, lion or sgd (momentum beta1, Nesterov)",
                            choices=("adamw", "lion", "sgd"))
    beta1: float = option(0.9, "first moment decay (SGD: momentum)", low=0.0, high=1.0, high_open=True)
    beta2: float = option(0.999, "second moment decay", low=0.0, high=1.0, high_open=True)
    precision: str = option("fp32", "fp32, bf16 (CPU/GPU) or fp16 (GPU, with a GradScaler)",
                            choices=("fp32", "bf16", "fp16"), resume="free")
    grad_clip: float = option(0.0, "clip the global gradient norm (0: off)", low=0.0, high=1e9, resume="free")
    accumulate: int = option(1, "micro-batches per optimiser step", low=1, high=1 << 16, resume="free")
    compile: bool = option(False, "torch.compile the trained module", resume="free")
    workers: int = option(0, "DataLoader worker processes", low=0, high=256, resume="free")
    checkpoint_every: int = option(0, "steps between checkpoints (0: only at the end and on an interrupt)", low=0,
                                   high=1 << 40, resume="free")
    keep_checkpoints: int = option(2, "newest checkpoints kept", low=1, high=1 << 20, resume="free")
    skip_nonfinite: bool = option(False, "skip steps whose loss is NaN/inf instead of stopping", resume="free")
    max_steps: int = option(0, "stop after this many optimiser steps in all (0: the whole run)", low=0, high=1 << 40,
                            resume="free")
    log_every: int = option(50, "steps between lines of steps.jsonl / TensorBoard points", low=1, high=1 << 40,
                            resume="free")
    tensorboard: bool = option(True, "write TensorBoard events when the package is installed", resume="free")
    init: str | None = option(None, "start from a saved model folder or .safetensors file (fine-tuning)",
                              example="INIT")
    seed: int = option(0, "seed of the model's initialisation, the data order and the augmentations", low=0,
                       high=MAX_SEED)
    device: str | None = option(None, "cpu, cuda, cuda:1 … (default: cuda if available)", resume="free",
                                example="cpu")

    def check(self) -> None:
        if self.init is not None and not self.init.strip():
            raise ConfigError("init must name a saved model folder or .safetensors file, got an empty string")


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
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise ConfigError(f"recipe {path}: {path.stat().st_size:,} bytes; a recipe is at most {MAX_RECIPE_BYTES:,}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"recipe {path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"recipe {path}: nested too deeply") from None
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
    from .plan import _resolve  # the same resolution a run uses

    source = f"recipe {path}"
    try:
        entry = get_entry(recipe.model) if recipe.model else None
        objective = recipe.objective or ("lm" if entry is not None and entry.task == "lm" else "classification")
        objective_cls = get_objective(objective)
        _resolve(objective_cls, [(source, recipe.train)])
        if entry is not None:
            from ..settings import names

            fields_ = names(entry.config_class)
            unknown = [k for k in recipe.model_args if k not in fields_]
            if unknown:
                raise ConfigError(f"{recipe.model} has no option {unknown[0]!r}; options are: {', '.join(fields_)}")
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(text if text.startswith(source) else f"{source}: {text}") from None
