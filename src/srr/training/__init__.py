"""Training: optimiser, schedule, the supervised loop and the language-model loop."""
from .schedule import parameter_groups, warmup_cosine
from .trainer import TrainConfig, evaluate, pick_device, shift_augment, train
from .lm import LMConfig, evaluate_lm, train_lm  # noqa: E402  (after trainer: it uses pick_device)

__all__ = ["TrainConfig", "train", "evaluate", "pick_device", "shift_augment", "warmup_cosine", "parameter_groups",
           "LMConfig", "train_lm", "evaluate_lm"]
