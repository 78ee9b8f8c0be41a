"""Training: one engine for every objective (:func:`train`), its settings and recipes, checkpoints, optimisers,
schedules, data parallelism, and the run plans of ``srr train``."""
from .checkpoint import find_latest, list_checkpoints, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .recipes import Recipe, list_recipes, load_recipe
from .engine import Engine, RunInterrupted, train
from .optim import Lion, build_optimizer
from .plan import TrainPlan, plan_resume, plan_training, run_plan
from .schedule import parameter_groups, warmup_cosine

__all__ = ["train", "Engine", "RunInterrupted", "TrainConfig", "Recipe", "load_recipe", "list_recipes",
           "TrainPlan", "plan_training", "plan_resume", "run_plan", "save_checkpoint", "load_checkpoint",
           "find_latest", "list_checkpoints", "Lion", "build_optimizer", "parameter_groups", "warmup_cosine"]
