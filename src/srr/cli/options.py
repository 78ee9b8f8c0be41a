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


def load_source(source: str, data_spec: str | None, overrides: list[str] | None, seed: int, subdir: str):
    """Resolve ``DIR_OR_MODEL`` of the analysis commands.

    A saved model folder gives the trained model, its registry name and arguments, the data it was trained on (unless
    ``data_spec`` says otherwise) and the default output ``DIR/subdir``; a registered name gives a model built for
    ``data_spec`` (default digits) with ``--set`` overrides, seeded with ``seed + 1``, and ``runs/subdir-NAME``.
    Returns ``(model, name, model_args, spec, out_dir, label)`` with ``label`` "trained" or "model".
    """
    from pathlib import Path

    import torch

    from ..data import load_data
    from ..models import create_model, from_pretrained, read_config

    path = Path(source)
    if path.is_dir():
        if overrides:
            from ..errors import ConfigError

            raise ConfigError(f"--set changes a registered model's arguments; the saved model {path} keeps its own")
        config = read_config(path)
        model = from_pretrained(path)
        spec = data_spec or config.get("data") or "digits"
        return model, config["model"], config["args"], spec, path / subdir, "trained"
    data = load_data(data_spec or "digits")
    model_args = {**data.model_overrides(), **parse_overrides(overrides)}
    torch.manual_seed(seed + 1)
    model = create_model(source, **model_args)
    return model, source, model_args, data.spec, Path(f"runs/{subdir}-{source}"), "model"


def initial_copy(source: str, name: str, model_args: dict, seed: int):
    """The model at initialisation: for a run folder of ``srr train`` (which seeds with ``--seed`` right before it
    builds the model), rebuilt from the seed in its ``summary.json``; otherwise built with ``seed``.
    Returns ``(model, how)`` where ``how`` says which."""
    import json
    from pathlib import Path

    import torch

    from ..models import create_model

    summary = Path(source) / "summary.json"
    how = f"random initialisation, seed {seed}"
    if summary.is_file():
        try:
            seed = int(json.loads(summary.read_text(encoding="utf-8"))["config"]["seed"])
            how = f"initialisation rebuilt from the training seed {seed} (summary.json)"
        except (ValueError, KeyError, TypeError):
            pass
    torch.manual_seed(seed)
    return create_model(name, **model_args), how


def add_source_arguments(parser, subdir: str) -> None:
    """``DIR_OR_MODEL``, ``--data`` and ``--out`` of the analysis commands (see :func:`load_source`)."""
    parser.add_argument("source", metavar="DIR_OR_MODEL", help="a saved model folder, or a registered model name")
    parser.add_argument("--data", help="data spec (default: the data the model was trained on, else digits)")
    parser.add_argument("--out", help=f"output folder (default DIR/{subdir})")
