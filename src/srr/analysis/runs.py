"""Opening what the instruments measure: a saved model or run folder, or a registry name, with the data it saw.

A folder written by ``srr train`` (or ``save_pretrained``, or ``srr redunet``) describes itself: ``config.json``
records the model, its task, the data spec and the preprocessing (or tokenizer), ``run.json`` the training seed. So
``open_source("runs/demo")`` gives the trained model and ``source_data`` its data without being told: the embedded
digits always, a data folder while its path still exists (otherwise a one-line error asks for ``--data``). A
registry name gives a freshly initialised model (seeded) for the data it is given (default digits).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataFileNotFoundError, RunFolderError, SrrError

#: The largest ``run.json`` or ``summary.json`` read (a run's records are a few kilobytes).
MAX_RECORD_BYTES = 16 << 20

__all__ = ["Source", "open_source", "source_data", "sample_inputs", "initial_copy", "training_seed",
           "check_not_mixed"]


@dataclass
class Source:
    """A model to measure: ``label`` is "trained" for a saved folder, "model" for a registry name."""

    model: nn.Module
    name: str
    args: dict
    label: str
    task: str
    path: Path | None = None
    record: dict = field(default_factory=dict)


def parse_overrides(items: list[str] | None) -> dict:
    """``["dim=64", "patch_size=[1,4]", "pool=mean"]`` → ``{"dim": 64, "patch_size": [1, 4], "pool": "mean"}``."""
    import ast

    out = {}
    for item in items or []:
        key, eq, value = str(item).partition("=")
        if not eq or not key.isidentifier():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        if len(value) > 10_000:
            raise ConfigError(f"--set {key}: a value of {len(value):,} characters is not a model setting")
        if value.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
            out[key] = float(value)  # refused by the field's check as a non-finite number, not as a string
            continue
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            out[key] = value
        except (RecursionError, MemoryError):
            raise ConfigError(f"--set {key}: the value is nested too deeply") from None
    return out


def open_source(source: str, overrides: list[str] | dict | None = None, seed: int = 0,
                data_spec: str | None = None) -> Source:
    """A saved model folder (its trained weights) or a registered model name (initialised with ``seed + 1``,
    ``overrides`` applied after the data's own settings)."""
    from ..checks import check_seed
    from ..models import create_model, from_pretrained, get_entry, read_config
    from ..models.hub import is_hub_id, resolve_pretrained

    seed = check_seed(seed)
    path = Path(source)
    if not path.is_dir() and is_hub_id(str(source)):
        path = resolve_pretrained(source)  # a Hub id: its files in the Hub cache
    if path.is_dir():
        check_not_mixed(path)
        if overrides:
            raise ConfigError(f"--set changes a registered model's settings; the saved model {path} keeps its own")
        record = read_config(path)
        model = from_pretrained(path)
        return Source(model, record["model"], model.config.to_dict(), "trained", type(model.config).task, path,
                      record)
    entry = get_entry(source)
    task = entry.task
    if isinstance(overrides, dict):
        given = dict(overrides)
    else:
        given = parse_overrides(overrides)
    own = {}
    if task in ("image", "lm"):
        own = _data_for(task, data_spec).model_overrides()
    torch.manual_seed(seed + 1)
    model = create_model(source, **{**own, **given})
    return Source(model, source, model.config.to_dict(), "model", task, None, {})


def _model_of(path: Path, name: str):
    from ..io import check_regular_file, read_structured

    check_regular_file(path / name, RunFolderError)  # a named pipe would block the read for ever
    try:
        value = read_structured(path / name, name, RunFolderError, MAX_RECORD_BYTES)
    except (OSError, RunFolderError):
        return None
    if not isinstance(value, dict):
        return None
    if name == "run.json":
        value = value.get("model_config") if isinstance(value.get("model_config"), dict) else {}
    return value.get("model"), value.get("args") if name != "summary.json" else None


def check_not_mixed(path: str | Path) -> None:
    """Refuse a folder whose files come from different runs (``run.json`` or ``summary.json`` naming another model
    or configuration than ``config.json``): what is read from it would describe one run with another's files."""
    path = Path(path)
    saved = _model_of(path, "config.json")
    if saved is None:
        return
    for name in ("run.json", "summary.json"):
        other = _model_of(path, name)
        if other is None or other[0] is None:
            continue
        if other[0] != saved[0] or (other[1] is not None and saved[1] is not None and other[1] != saved[1]):
            raise RunFolderError(f"{path} mixes two runs: {name} describes {other[0]}, config.json holds "
                                 f"{saved[0]} with other settings" if other[0] == saved[0] else
                                 f"{path} mixes two runs: {name} describes {other[0]}, config.json holds {saved[0]}; "
                                 "retrain into a fresh folder (or with --overwrite)")


def _data_for(task: str, spec: str | None):
    from ..data import load_data

    if task == "lm" and spec is None:
        raise ConfigError("a language model needs --data text:PATH")
    return load_data(spec or "digits", task=task)


def source_data(src: Source, data_spec: str | None = None):
    """The data to measure ``src`` on: ``data_spec``, else what its folder records, else digits (image models)."""
    from ..data import load_data

    if src.task == "features":
        spec = data_spec or src.record.get("data") or "digits"
        return load_data(spec, task="image")
    spec = data_spec or src.record.get("data")
    if spec is None:
        if src.task == "lm":
            raise ConfigError(f"{src.path or src.name} records no data: pass --data text:PATH")
        spec = "digits"
    try:
        return load_data(spec, task=src.task)
    except DataFileNotFoundError as exc:
        if data_spec is None and src.path is not None:
            raise DataFileNotFoundError(f"{exc} (the data {src.path} was trained on; pass --data)") from None
        raise


def sample_inputs(src: Source, data, n: int, split: str = "test") -> Tensor:
    """The first ``n`` inputs of a split: images (n, C, H, W), or validation windows of token ids (n, context)."""
    if n < 1:
        raise ConfigError(f"the number of samples must be positive, got {n}")
    if src.task == "lm":
        from ..data.windows import validation_windows

        tokens = data.val if split == "test" else data.train
        c, starts = validation_windows(len(tokens), getattr(src.model, "context", 128))
        starts = starts[:n]
        return tokens[starts.unsqueeze(1) + torch.arange(c)]
    dataset = data.test_set if split == "test" else data.train_set
    take = list(range(min(n, len(dataset))))
    return dataset.__getitems__(take)[0]


def training_seed(path: Path | None) -> int | None:
    """The seed the run in ``path`` was trained with (``run.json``, else ``summary.json``), or None."""
    if path is None:
        return None
    from ..checks import MAX_SEED, check_int
    from ..io import read_structured

    for name, keys in (("run.json", ("train", "seed")), ("summary.json", ("config", "seed"))):
        try:
            value = read_structured(path / name, name, RunFolderError, MAX_RECORD_BYTES)
            for k in keys:
                value = value[k]
        except (OSError, KeyError, TypeError, RunFolderError):
            continue
        # a recorded seed seeds the rebuilt initialisation: 10^23 would overflow torch's generator
        return check_int(value, f"{path / name}: {'.'.join(keys)}", low=0, high=MAX_SEED, error=RunFolderError)
    return None


def initial_copy(src: Source, seed: int = 0) -> tuple[nn.Module, str]:
    """The model at initialisation: for a training run rebuilt from its seed (``srr train`` seeds right before it
    builds the model), otherwise built with ``seed``. Returns ``(model, how)``."""
    from ..models import create_model

    found = training_seed(src.path)
    how = f"random initialisation, seed {seed}"
    if found is not None:
        seed, how = found, f"initialisation rebuilt from the training seed {found}"
    torch.manual_seed(seed)
    try:
        return create_model(src.name, **src.args), how
    except SrrError as exc:  # pragma: no cover - the saved configuration was checked when the model was loaded
        raise ConfigError(f"cannot rebuild {src.name}'s initialisation: {exc}") from None
