"""``srr train``: train a registered model with an objective, from a recipe with command-line overrides; resume a run.

Settings come from, lowest first: the engine's defaults, the objective's, the recipe (``--recipe``; without one the
CPU demo ``digits_demo`` for classification), then the flags given here. Every flag either changes the run or is
refused: a setting of another objective names the objectives it belongs to. ``--resume DIR`` continues the run in
DIR from its newest complete checkpoint (only settings that cannot change the run's course may be given again with
another value). Under ``torchrun --nproc_per_node N`` the same command trains data-parallel.
"""
from __future__ import annotations

NAME = "train"
HELP = "train a model with an objective (default: the CPU demo recipe, CRATE on digits)"


def add_arguments(p) -> None:
    from ..objectives import get_objective, list_objectives
    from .flags import add_settings_flags
    from .options import add_set_argument

    demo = get_objective("classification").default_recipe
    p.add_argument("--recipe", help=f"recipe name (see --list-recipes) or TOML file; default {demo} for "
                                    "classification")
    p.add_argument("--list-recipes", action="store_true", help="list the shipped recipes and exit")
    p.add_argument("--objective", choices=list_objectives(),
                   help="what to train for (default: from --model and --data: classification for images, lm for text)")
    p.add_argument("--model", help="registered model name (see `srr models`); default: the recipe's")
    p.add_argument("--data", help="data spec: digits, idx:DIR, cifar10:DIR, cifar100:DIR, folder:DIR, npz:FILE, "
                                  "synthetic[:k=4,...], text:FILE; default: the recipe's")
    p.add_argument("--out", help="output folder (default runs/MODEL-DATA); refused if it holds another run")
    p.add_argument("--overwrite", action="store_true", help="replace the srr output of another run in --out")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar: one line per epoch or evaluation")
    add_set_argument(p)
    add_settings_flags(p)


def plan_from_args(args):
    """The :class:`~srr.training.TrainPlan` of the parsed command line (nothing is loaded or trained)."""
    from pathlib import Path

    from ..errors import ConfigError, RunFolderError
    from ..training import plan_resume, plan_training
    from .flags import given_settings
    from .options import parse_overrides

    settings = given_settings(args)
    if args.out is not None and not args.out.strip():
        raise RunFolderError("--out must name a folder, got an empty string")
    if args.resume is not None:
        fixed = {"--model": args.model, "--data": args.data, "--recipe": args.recipe, "--set": args.set,
                 "--objective": args.objective, "--overwrite": args.overwrite or None}
        given = [flag for flag, value in fixed.items() if value]
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            given.append("--out")
        if given:
            raise ConfigError(f"{', '.join(given)} cannot change a resumed run: --resume continues {args.resume} "
                              "as it was set up")
        return plan_resume(args.resume, settings)
    return plan_training(recipe=args.recipe, model=args.model, data=args.data, objective=args.objective,
                         settings=settings, model_args=parse_overrides(args.set), out=args.out,
                         overwrite=args.overwrite)


def describe_sources(plan) -> str:
    """One line: the settings that do not have their default value, each with where it came from."""
    values = {**plan.train.to_dict(), **plan.objective_config.to_dict()}
    cells = [f"{k}={values[k]} ({src})" for k, src in plan.sources.items() if k in values and src != "default"]
    cells += [f"{k}={v} ({plan.sources.get(k, 'flag')})" for k, v in
              (("model." + a, b) for a, b in {**plan.recipe_args, **plan.model_args}.items())]
    return "; ".join(cells) if cells else "all defaults"


def run(args) -> int:
    import os

    from ..objectives import get_objective
    from ..training import list_recipes, run_plan

    if args.list_recipes:
        for name, description in list_recipes().items():
            print(f"{name:24s} {description}")
        return 0
    plan = plan_from_args(args)
    main = os.environ.get("RANK", "0") == "0"

    def announce():  # once the run is accepted: a refused one prints its error line alone
        what = "resuming" if plan.resume else "training"
        print(f"{what} {plan.model} on {plan.data} ({plan.objective}) -> {plan.out}; settings: {describe_sources(plan)}",
              flush=True)

    summary = run_plan(plan, progress=not args.no_progress, on_start=announce)
    if main:
        print(get_objective(plan.objective).summary_line(summary) + f" -> {plan.out}")
    return 0


__all__ = ["NAME", "HELP", "add_arguments", "run", "plan_from_args", "describe_sources"]
