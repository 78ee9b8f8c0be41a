"""How the settings of a run resolve: layers of settings (objective defaults, a recipe, the flags), each value checked
and named by where it came from; a setting that belongs neither to the engine nor to the objective is refused,
naming the objectives it belongs to."""
from __future__ import annotations

import difflib
from dataclasses import fields

from ..errors import ConfigError
from ..objectives import get_objective, list_objectives
from .config import TrainConfig

__all__ = ["setting_owners", "resolve_settings", "split_settings", "from_layers"]


def setting_owners(name: str) -> list[str]:
    """The objectives whose settings include ``name`` ("engine" for the engine's)."""
    owners = ["engine"] if name in {f.name for f in fields(TrainConfig)} else []
    return owners + [o for o in list_objectives() if name in {f.name for f in fields(get_objective(o).Config)}]


def split_settings(objective_cls, settings: dict, source: str) -> tuple[dict, dict]:
    engine_names = {f.name for f in fields(TrainConfig)}
    own = {f.name for f in fields(objective_cls.Config)}
    engine, mine = {}, {}
    for key, value in settings.items():
        if key in engine_names:
            engine[key] = value
        elif key in own:
            mine[key] = value
        else:
            owners = setting_owners(key)
            flag = "--" + key.replace("_", "-")
            prefix = f"{source}: " if source else ""
            if owners:
                raise ConfigError(f"{prefix}{flag} does not apply to --objective {objective_cls.name} "
                                  f"(it belongs to {', '.join(owners)})")
            known = engine_names | {f.name for o in list_objectives() for f in fields(get_objective(o).Config)}
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{prefix}unknown training setting {key!r}{hint}")
    return engine, mine


def resolve_settings(objective_cls, layers: list[tuple[str, dict]]):
    """Engine and objective settings from ``layers`` of (source, settings), lowest precedence first."""
    engine_values, objective_values, sources = {}, {}, {}
    layers = [("objective default", dict(objective_cls.defaults))] + layers
    for source, settings in layers:
        engine, mine = split_settings(objective_cls, settings, "" if source == "flag" else source)
        for key in engine:
            sources[key] = source
        for key in mine:
            sources[key] = source
        engine_values.update(engine)
        objective_values.update(mine)
    train = from_layers(TrainConfig, engine_values, sources)
    config = from_layers(objective_cls.Config, objective_values, sources)
    for f in fields(TrainConfig):
        sources.setdefault(f.name, "default")
    for f in fields(objective_cls.Config):
        sources.setdefault(f.name, "default")
    return train, config, sources


def from_layers(cls, values: dict, sources: dict):
    """``cls`` from ``values``; an invalid value is named with where it came from (a flag, a recipe file)."""
    from ..settings import check_value

    checked = {}
    for key, value in values.items():
        origin = sources.get(key, "")
        label = "--" + key.replace("_", "-") if origin in ("flag", "") else f"{origin}: {key}"
        checked[key] = check_value(cls, key, value, label=label)
    try:
        return cls(**checked)
    except ConfigError as exc:
        raise ConfigError(f"settings: {exc}") from None
