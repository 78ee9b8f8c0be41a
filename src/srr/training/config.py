"""Training settings (:class:`TrainConfig`) and recipe files (TOML) that fill them.

A recipe is a TOML file::

    description = "CRATE-T on CIFAR-10 from scratch"
    model = "crate_tiny"                 # registry name
    data = "cifar10:data/cifar-10-batches-py"
    [model_args]                         # create_model overrides (after the data's own: image size, classes)
    patch_size = 4
    [train]                              # TrainConfig fields
    epochs = 200
    optimizer = "adamw"

Precedence, lowest first: :class:`TrainConfig` defaults, the recipe, then the command line. Recipes ship in
``srr/recipes/`` (``--recipe NAME``); any other file is named by its path.
"""
from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["TrainConfig", "Recipe", "load_recipe", "list_recipes", "RECIPE_DIR", "config_from"]

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes"


@dataclass
class TrainConfig:
    """Every knob of :func:`srr.training.train`. ``batch_size`` is the global batch of one optimiser step: all
    ranks and all accumulated micro-batches together, so a recipe means the same run on 1 or N processes."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3  # peak learning rate
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of lr
    weight_decay: float = 0.05  # on matrices only: norms, biases, embeddings, CLS and positions are excluded
    optimizer: str = "adamw"  # adamw | lion | sgd
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_epochs: float = 1.0
    schedule: str = "step"  # cosine updated every "step" or once per "epoch"
    label_smoothing: float = 0.0
    # augmentation (each off by default; applied on standardised tensors, see srr.training.augment)
    shift: int = 0  # random translation by up to this many pixels
    crop_scale: float = 0.0  # random resized crop, area fraction drawn from [crop_scale, 1] (0: off)
    flip: bool = False  # random horizontal flip
    randaugment: int = 0  # RandAugment-like: ops per image (0: off)
    randaugment_magnitude: int = 9  # 0..30
    mixup: float = 0.0  # mixup Beta(α, α) (0: off)
    cutmix: float = 0.0  # cutmix Beta(α, α) (0: off); with both, each batch picks one
    resize: int = 0  # resize every image to resize × resize (train and test) before the model (0: off)
    # precision and speed
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16: CUDA only, with a GradScaler)
    grad_clip: float = 0.0  # clip the global gradient norm (0: off)
    accumulate: int = 1  # micro-batches per optimiser step
    compile: bool = False  # torch.compile the model
    workers: int = 0  # DataLoader worker processes
    # checkpoints, divergence, logging
    checkpoint_every: int = 0  # optimiser steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2
    skip_nonfinite: bool = False  # skip a step whose loss is NaN/inf instead of stopping
    max_steps: int = 0  # stop after this many optimiser steps in total (0: all epochs)
    log_every: int = 50  # steps between lines of steps.jsonl / TensorBoard points
    tensorboard: bool = True  # write TensorBoard events when the package is installed
    init: str | None = None  # start from a saved model folder (fine-tuning); a mismatched head is re-initialised
    seed: int = 0
    device: str | None = None
    extra: dict = field(default_factory=dict)  # free-form settings kept with the run (e.g. for other losses)

    def validate(self) -> "TrainConfig":
        import math

        flags = [f"--{f.name.replace('_', '-')}" for f in fields(self)
                 if isinstance(getattr(self, f.name), float) and not math.isfinite(getattr(self, f.name))]
        if flags:
            raise ConfigError(f"{', '.join(flags)} must be finite numbers")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("--epochs and --batch-size must be positive and --lr > 0")
        checks = [
            (self.optimizer in ("adamw", "lion", "sgd"), f"optimizer must be adamw, lion or sgd, got {self.optimizer!r}"),
            (self.schedule in ("step", "epoch"), f"schedule must be 'step' or 'epoch', got {self.schedule!r}"),
            (self.precision in ("fp32", "bf16", "fp16"), f"precision must be fp32, bf16 or fp16, got {self.precision!r}"),
            (self.accumulate >= 1, "--accumulate must be at least 1"),
            (self.workers >= 0 and self.checkpoint_every >= 0 and self.max_steps >= 0, "counts must be >= 0"),
            (self.keep_checkpoints >= 1, "--keep-checkpoints must be at least 1"),
            (0.0 <= self.crop_scale <= 1.0, "--crop-scale must lie in [0, 1]"),
            (0 <= self.randaugment_magnitude <= 30, "--randaugment-magnitude must lie in 0..30"),
            (min(self.mixup, self.cutmix, self.label_smoothing, self.grad_clip, self.warmup_epochs) >= 0,
             "mixup, cutmix, label smoothing, clipping and warm-up must be >= 0"),
            (self.log_every >= 1, "--log-every must be at least 1"),
            (self.label_smoothing <= 1.0, f"--label-smoothing must lie in [0, 1], got {self.label_smoothing}"),
            (min(self.shift, self.resize, self.randaugment) >= 0, "--shift, --resize and --randaugment must be >= 0"),
            (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0, "beta1 and beta2 must lie in [0, 1)"),
            (0.0 <= self.min_lr_ratio <= 1.0, "--min-lr-ratio must lie in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


_FIELDS = {f.name: f for f in fields(TrainConfig)}


def _coerce(name: str, value, source: str):
    """Check a recipe value against the field's default type (ints are accepted for floats)."""
    default = TrainConfig.__dataclass_fields__[name]
    kind = type(default.default) if default.default is not dataclasses.MISSING else dict
    if default.default is None:
        if value is None or isinstance(value, str):
            return value
        raise ConfigError(f"{source}: {name} must be a string, got {value!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {name} must be {kind.__name__}, got {value!r}")
    return value


def config_from(settings: dict, source: str = "settings") -> TrainConfig:
    """A validated :class:`TrainConfig` from a mapping of field names (unknown names raise with a suggestion)."""
    kwargs = {}
    for key, value in settings.items():
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, list(_FIELDS), n=1)
            raise ConfigError(f"{source}: unknown training setting {key!r}"
                              + (f"; did you mean {close[0]!r}?" if close else ""))
        kwargs[key] = _coerce(key, value, source)
    return TrainConfig(**kwargs).validate()


@dataclass
class Recipe:
    name: str
    description: str = ""
    model: str | None = None
    data: str | None = None
    model_args: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


def list_recipes() -> dict[str, str]:
    """Shipped recipes: name → description."""
    out = {}
    for path in sorted(RECIPE_DIR.glob("*.toml")):
        out[path.stem] = load_recipe(path).description
    return out


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read a shipped recipe by name or any TOML file by path; checks every key."""
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
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"recipe {path}: not valid TOML ({exc})") from None
    allowed = {"description", "model", "data", "model_args", "train"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"recipe {path}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    for key in ("model_args", "train"):
        if not isinstance(raw.get(key, {}), dict):
            raise ConfigError(f"recipe {path}: [{key}] must be a table")
    recipe = Recipe(path.stem, raw.get("description", ""), raw.get("model"), raw.get("data"),
                    dict(raw.get("model_args", {})), dict(raw.get("train", {})))
    config_from(recipe.train, f"recipe {path}")  # validate now, with the file's name in the message
    return recipe
