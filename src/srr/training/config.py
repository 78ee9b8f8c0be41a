"""The training engine's settings: :class:`TrainConfig`, what the engine does the same way for every objective.

Recipes (:mod:`srr.training.recipes`) and the command line fill it. A recipe is a TOML file::

    description = "CRATE-Tiny on CIFAR-10 from scratch"
    model = "crate_tiny"                 # registry name
    data = "cifar10:data/cifar-10-batches-py"
    objective = "classification"         # default: from the model (classification for images, lm for text)
    [model_args]                         # configuration overrides of the model (after the data's own)
    patch_size = 4
    [train]                              # engine and objective settings
    epochs = 200
    optimizer = "adamw"

Precedence, lowest first: the engine's defaults, the objective's defaults (MCR² batches of 512, …), the recipe, then
the command line. Recipes ship in ``srr/recipes/`` (``--recipe NAME``); any other file is named by its path.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import Settings, option

__all__ = ["TrainConfig", "MAX_SEED"]

MAX_SEED = (1 << 63) - 1


@dataclass
class TrainConfig(Settings):
    """Everything the engine does the same way for every objective. ``batch_size`` is the global batch of one
    optimiser step: all processes and all accumulated micro-batches together, so a recipe means the same run on 1 or
    N processes. ``resume="free"`` settings may change when a run is resumed; the others are fixed by its set-up."""

    batch_size: int = option(64, "global batch per optimiser step (all processes, all micro-batches)", low=1,
                             high=1 << 31)
    lr: float = option(1e-3, "peak learning rate", low=0.0, high=10.0, low_open=True)
    min_lr_ratio: float = option(0.0, "cosine floor as a fraction of --lr", low=0.0, high=1.0)
    weight_decay: float = option(0.05, "weight decay (never on norms, biases, embeddings, positions, gains)", low=0.0,
                                 high=100.0)
    optimizer: str = option("adamw", "adamw, lion or sgd (momentum beta1, Nesterov)",
                            choices=("adamw", "lion", "sgd"))
    beta1: float = option(0.9, "first moment decay (SGD: momentum)", low=0.0, high=1.0, high_open=True)
    beta2: float = option(0.999, "second moment decay", low=0.0, high=1.0, high_open=True)
    precision: str = option("fp32", "fp32, bf16 (CPU/GPU) or fp16 (GPU, with a GradScaler)",
                            choices=("fp32", "bf16", "fp16"), resume="free")
    grad_clip: float = option(0.0, "clip the global gradient norm (0: off)", low=0.0, high=1e9, resume="free")
    accumulate: int = option(1, "micro-batches per optimiser step", low=1, high=1 << 16, resume="free")
    compile: bool = option(False, "torch.compile the trained module", resume="free")
    workers: int = option(0, "DataLoader worker processes", low=0, high=256, resume="free")
    checkpoint_every: int = option(0, "steps between checkpoints (0: only at the end and on an interrupt)", low=0,
                                   high=1 << 40, resume="free")
    keep_checkpoints: int = option(2, "newest checkpoints kept", low=1, high=1 << 20, resume="free")
    skip_nonfinite: bool = option(False, "skip steps whose loss is NaN/inf instead of stopping", resume="free")
    max_steps: int = option(0, "stop after this many optimiser steps in all (0: the whole run)", low=0, high=1 << 40,
                            resume="free")
    stop_loss: float = option(0.0, "stop after the first round whose mean training loss is at most this (0: off)",
                              low=0.0, high=1e9)
    log_every: int = option(50, "steps between lines of steps.jsonl / TensorBoard points", low=1, high=1 << 40,
                            resume="free")
    tensorboard: bool = option(True, "write TensorBoard events when the package is installed", resume="free")
    init: str | None = option(None, "start from a saved model folder or .safetensors file (fine-tuning)",
                              example="INIT")
    seed: int = option(0, "seed of the model's initialisation, the data order and the augmentations", low=0,
                       high=MAX_SEED)
    device: str | None = option(None, "cpu, cuda, cuda:1 … (default: cuda if available)", resume="free",
                                example="cpu")

    def check(self) -> None:
        if self.init is not None and not self.init.strip():
            raise ConfigError("init must name a saved model folder or .safetensors file, got an empty string")
