"""A training run resolved before it starts: the model, the data, the objective and every setting with its source.

:func:`plan_training` applies, lowest first, the engine's defaults, the objective's defaults, the recipe and the
given settings (the command line's flags), and checks every value; a setting that belongs neither to the engine nor
to the chosen objective is refused, naming the objectives it belongs to. :func:`plan_resume` rebuilds the plan of a
run from its ``run.json``: settings marked ``resume="free"`` may change, any other given with a different value is
refused (it would be ignored by the restored optimiser, schedule or data order). :func:`run_plan` loads the data,
builds the model (seeded) and trains. The command line (``srr train``) is these three calls.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckpointError, ConfigError, DataFileNotFoundError, RunFolderError, SrrError
from ..io import read_structured
from ..objectives import get_objective
from ..settings import field_info, from_mapping, names
from .config import TrainConfig
from .recipes import load_recipe
from .resolve import resolve_settings, split_settings

__all__ = ["TrainPlan", "plan_training", "plan_resume", "run_plan", "default_out"]


@dataclass
class TrainPlan:
    objective: str
    model: str
    data: str
    train: TrainConfig
    objective_config: object
    model_args: dict = field(default_factory=dict)  # model settings given (--set); they win over every other
    recipe_args: dict = field(default_factory=dict)  # the recipe's [model_args]
    recipe_first: bool = False  # the data's own model settings win over the recipe's (the implicit demo recipe)
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    recipe: str | None = None
    sources: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"objective": self.objective, "model": self.model, "data": self.data, "recipe": self.recipe,
                "model_args": dict(self.model_args), "recipe_args": dict(self.recipe_args), "train": self.train.to_dict(),
                "objective_config": self.objective_config.to_dict(), "out": self.out, "resume": self.resume,
                "overwrite": self.overwrite, "sources": dict(self.sources)}


def default_out(model: str, data: str) -> str:
    return f"runs/{model}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', data)}"


def _task_objective(task: str) -> str:
    """The objective a task trains for without --objective: classification for images, else the task's own."""
    from ..objectives import list_objectives

    if task == "image":
        return "classification"
    return "lm" if task == "lm" else (list_objectives(task) or ["classification"])[0]


def _objective_for(objective: str | None, recipe, model: str | None, data: str | None) -> str:
    from ..data import list_sources
    from ..data.sources import TASKS
    from ..models import get_entry

    if objective:
        get_objective(objective)
        return objective
    if recipe is not None and recipe.objective:
        return recipe.objective
    name = model or (recipe.model if recipe is not None else None)
    if name:
        return _task_objective(get_entry(name).task)
    spec = data or (recipe.data if recipe is not None else None) or ""
    task = next((t for t in TASKS if spec.partition(":")[0] in list_sources(t)), "image")
    return _task_objective(task)


def plan_training(*, recipe: str | None = None, model: str | None = None, data: str | None = None,
                  objective: str | None = None, settings: dict | None = None, model_args: dict | None = None,
                  out: str | None = None, overwrite: bool = False) -> TrainPlan:
    """Resolve a new run (see the module docstring). ``settings`` are engine and objective fields by name."""
    from ..models import get_entry

    settings, model_args = dict(settings or {}), dict(model_args or {})
    explicit = load_recipe(recipe) if recipe is not None else None
    name = _objective_for(objective, explicit, model, data)
    objective_cls = get_objective(name)
    implicit = load_recipe(objective_cls.default_recipe) if explicit is None and objective_cls.default_recipe else None
    used = explicit or implicit
    if explicit is not None and explicit.objective and explicit.objective != name:
        raise ConfigError(f"recipe {explicit.name} is for --objective {explicit.objective}, not {name}")
    # a recipe's [model_args] apply unless --model is given; the implicit demo recipe's also unless --data is given
    # (they are tuned for the demo's model on the demo's data); an explicit recipe's win over the data's own
    recipe_args = dict(used.model_args) if used is not None and model is None and (
        data is None or explicit is not None) else {}
    model = model or (used.model if used else None) or objective_cls.default_model
    if model is None:
        raise ConfigError(f"--objective {name} needs --model")
    entry = get_entry(model)
    if entry.task != objective_cls.task:
        kind = {"lm": "a language model", "image": "an image model", "sparse": "a sparse-coding model"}.get(
            entry.task, f"a {entry.task} model")
        raise ConfigError(f"{model} is {kind}, not one for --objective {name}; `srr models` lists them")
    options = names(entry.config_class)
    for key, source in [(k, f"recipe {used.name}") for k in recipe_args] + [(k, "--set") for k in model_args]:
        if key not in options:
            raise ConfigError(f"{source}: {model} has no option {key!r}; options are: {', '.join(options)}")
    data = data or (used.data if used else None)
    if data is None:
        if objective_cls.task == "lm":
            raise ConfigError(f"--objective {name} needs --data text:PATH (a plain text file)")
        if explicit is not None:
            raise ConfigError(f"recipe {explicit.name} names no data: pass --data")
        data = objective_cls.default_data or "digits"
    layers = [(f"recipe {used.name}", dict(used.train))] if used is not None else []
    layers.append(("flag", settings))
    train, config, sources = resolve_settings(objective_cls, layers)
    for key in recipe_args:
        sources[f"model.{key}"] = f"recipe {used.name}"
    for key in model_args:
        sources[f"model.{key}"] = "flag"
    return TrainPlan(name, model, data, train, config, model_args, recipe_args=recipe_args,
                     recipe_first=explicit is None, out=out or default_out(model, data), overwrite=overwrite,
                     recipe=used.name if used else None, sources=sources)


def _read_run(run_dir: Path) -> dict:
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        raise DataFileNotFoundError(f"{run_dir} holds no run.json: not an srr training run")
    return read_structured(run_json, "a run", CheckpointError)


def plan_resume(run_dir: str | Path, settings: dict | None = None) -> TrainPlan:
    """The plan of the run in ``run_dir`` with the changes ``settings`` (only ``resume="free"`` fields may change)."""
    run_dir = Path(run_dir)
    if not str(run_dir).strip():
        raise RunFolderError("--resume must name a run folder, got an empty string")
    saved = _read_run(run_dir)
    try:
        objective_cls = get_objective(saved.get("objective", "classification"))
        model_config = saved["model_config"]
        train_saved, objective_saved = saved["train"], saved.get("objective_config", {})
        model, model_args, data = model_config["model"], dict(model_config.get("args", {})), saved["data"]
        if not (isinstance(model, str) and isinstance(data, str) and isinstance(train_saved, dict)
                and isinstance(objective_saved, dict)):
            raise TypeError("bad types")
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{run_dir / 'run.json'} is not a readable run description ({exc})") from None
    settings = dict(settings or {})
    engine_given, mine_given = split_settings(objective_cls, settings, "--resume")
    train = from_mapping(TrainConfig, train_saved, f"{run_dir / 'run.json'}")
    config = from_mapping(objective_cls.Config, objective_saved, f"{run_dir / 'run.json'}")
    for cls, base, given in ((TrainConfig, train, engine_given), (objective_cls.Config, config, mine_given)):
        for key, value in given.items():
            info = field_info(cls, key)
            if info["resume"] != "free" and getattr(base, key) != value:
                flag = "--" + key.replace("_", "-")
                raise ConfigError(f"{flag} cannot change a resumed run ({getattr(base, key)!r} in {run_dir}); "
                                  "--resume continues the run as it was set up")
    train = from_mapping(TrainConfig, engine_given, "--resume", base=train)
    config = from_mapping(objective_cls.Config, mine_given, "--resume", base=config)
    sources = {**dict(saved.get("sources", {})), **{k: "flag" for k in settings}}
    return TrainPlan(objective_cls.name, model, data, train, config, model_args, out=str(run_dir),
                     resume=True, recipe=saved.get("recipe"), sources=sources)


def check_not_an_input(out: str | None, data: str, init: str | None) -> None:
    """The run folder must not be (or lie inside) the data it reads, nor be the folder it starts from (``--init``):
    outputs never land on inputs (an image folder would even take a run folder inside it for a class)."""
    from ..data import parse_spec

    if out is None:
        return
    target = Path(out).expanduser().resolve()
    try:
        spec_path = parse_spec(data).path
    except SrrError:  # an unparsable spec is refused, with its own message, when it is loaded
        spec_path = None
    if spec_path:
        source = Path(spec_path).expanduser().resolve()
        if target == source or target.is_relative_to(source):
            raise RunFolderError(f"--out {out} lies in the data {data}: the run would be written among its input")
    if init:
        start = Path(init).expanduser().resolve()
        if start == target or start.is_relative_to(target):
            raise RunFolderError(f"--out {out} holds the --init weights {init}: the run would be written over its "
                                 "input")


def run_plan(plan: TrainPlan, progress: bool = True, on_start=None) -> dict:
    """Load the data, build the model (seeded with the run's seed) and train it; returns the summary. ``on_start``
    is called once every check has passed (see :func:`srr.training.train`)."""
    import torch

    from ..data import load_data
    from ..models import create_model
    from .engine import train

    objective_cls = get_objective(plan.objective)
    check_not_an_input(plan.out, plan.data, plan.train.init)
    data = load_data(plan.data, task=objective_cls.task)
    if plan.resume:
        args = dict(plan.model_args)
    else:
        own = dict(data.model_overrides())
        resize = getattr(plan.objective_config, "resize", 0)
        if resize:
            own["image_size"] = resize
        first, second = (plan.recipe_args, own) if plan.recipe_first else (own, plan.recipe_args)
        args = {**first, **second, **plan.model_args}
    torch.manual_seed(plan.train.seed)
    model = create_model(plan.model, **args)
    objective = objective_cls(plan.objective_config, data)
    run_info = {"recipe": plan.recipe, "objective": plan.objective, "data": plan.data,
                "model_config": {"model": plan.model, "args": model.config.to_dict()},
                "train": plan.train.to_dict(), "objective_config": plan.objective_config.to_dict(),
                "sources": plan.sources}
    return train(model, objective, plan.train, plan.out, progress=progress, resume=plan.resume,
                 overwrite=plan.overwrite, run_info=run_info, on_start=on_start)
