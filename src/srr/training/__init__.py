"""Training: settings and recipes, the data-parallel image loop, augmentation, optimisers, schedules, checkpoints,
and the language-model loop."""
from .augment import Augmenter, shift_augment
from .checkpoint import find_latest, load_checkpoint, save_checkpoint
from .config import Recipe, TrainConfig, config_from, list_recipes, load_recipe
from .distributed import GlobalBatchSampler, pick_device
from .optim import Lion, build_optimizer
from .schedule import parameter_groups, warmup_cosine
from .trainer import evaluate, train
from .lm import LMConfig, evaluate_lm, train_lm  # noqa: E402  (after trainer: it uses pick_device)

__all__ = ["TrainConfig", "Recipe", "load_recipe", "list_recipes", "config_from", "train", "evaluate", "pick_device",
           "shift_augment", "Augmenter", "warmup_cosine", "parameter_groups", "Lion", "build_optimizer",
           "GlobalBatchSampler", "save_checkpoint", "load_checkpoint", "find_latest", "LMConfig", "train_lm",
           "evaluate_lm"]
