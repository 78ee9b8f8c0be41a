"""Command-line flags generated from settings dataclasses: one flag per field, with its help text and checks.

Every field of :class:`srr.training.TrainConfig` and of every registered objective's ``Config`` becomes a flag
(``weight_decay`` → ``--weight-decay``; a bool gets ``--flag``/``--no-flag``). A flag's default is None, so that a flag
that was given can be told from one that was not: :func:`given_settings` returns the given ones by field name, each
value checked where it enters with an error that names the flag. Which flags apply to which objective is decided
when the run is planned (:func:`srr.training.plan_training` refuses the others).
"""
from __future__ import annotations

import argparse
from dataclasses import fields

from ..objectives import get_objective, list_objectives
from ..settings import check_value, field_info
from ..training import TrainConfig

__all__ = ["flag_name", "add_settings_flags", "given_settings", "setting_classes"]


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def setting_classes() -> list[tuple[str, type]]:
    """``[("engine", TrainConfig), (objective, its Config), …]``."""
    return [("engine", TrainConfig)] + [(name, get_objective(name).Config) for name in list_objectives()]


def add_settings_flags(parser) -> None:
    """One flag per field of the engine's and every objective's settings (a field shared by several objectives is
    one flag; its help names them)."""
    owners: dict[str, list[str]] = {}
    first: dict[str, type] = {}
    meanings: dict[str, dict[str, str]] = {}
    for owner, cls in setting_classes():
        for f in fields(cls):
            info = field_info(cls, f.name)
            if info["flag"]:
                owners.setdefault(f.name, []).append(owner)
                first.setdefault(f.name, cls)
                default = "" if info["default"] is None else f" (default {info['default']})"
                meanings.setdefault(f.name, {})[owner] = info["help"] + default
    groups = {"engine": parser.add_argument_group("training engine (every objective)")}
    for name in list_objectives():
        groups[name] = parser.add_argument_group(f"objective {name} (--objective {name})")
    for name, who in owners.items():
        info = field_info(first[name], name)
        group = groups["engine"] if who == ["engine"] else groups[who[0]]
        texts = meanings[name]
        if len(set(texts.values())) > 1:  # one name, different meanings: each objective's
            help_text = "; ".join(f"[{owner}] {text}" for owner, text in texts.items())
        else:
            extra = "" if who == ["engine"] or len(who) == 1 else f" [{', '.join(who)}]"
            help_text = next(iter(texts.values())) + extra
        help_text = help_text.replace("%", "%%")
        if info["kind"] == "bool":
            group.add_argument(flag_name(name), dest=name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        else:
            kind = {"int": int, "float": float}.get(info["kind"], str)
            metavar = ("{" + ",".join(info["choices"]) + "}") if info["choices"] else name.upper()
            group.add_argument(flag_name(name), dest=name, type=kind, default=None, metavar=metavar, help=help_text)


def given_settings(args) -> dict:
    """The settings given on the command line, by field name, each checked (bounds, choices) as its flag."""
    out = {}
    classes = setting_classes()
    for owner, cls in classes:
        for f in fields(cls):
            value = getattr(args, f.name, None)
            if value is not None and f.name not in out:
                out[f.name] = check_value(cls, f.name, value, label=flag_name(f.name))
    return out
