"""Training: optimiser, schedule and the supervised loop."""
from .schedule import parameter_groups, warmup_cosine
from .trainer import TrainConfig, evaluate, pick_device, shift_augment, train

__all__ = ["TrainConfig", "train", "evaluate", "pick_device", "shift_augment", "warmup_cosine", "parameter_groups"]
