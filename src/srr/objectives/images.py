"""What the image objectives share: epochs over the training split, the augmentations, sharded evaluation.

A round is one epoch: one permutation of the training images per epoch, drawn from the data generator; global
batch j is ``perm[j·B : (j+1)·B]`` and process r of W takes its items r, r+W, … (see
:class:`~srr.data.samplers.GlobalBatchSampler`). Augmentations act on batches of standardised tensors on the
device (:mod:`srr.data.augment`), drawing from the engine's augmentation generator.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..settings import option
from ..data.augment import Augmenter
from ..data.samplers import GlobalBatchSampler
from .base import Inputs, Objective, ObjectiveConfig, RoundSampler

__all__ = ["ImageObjectiveConfig", "ImageObjective", "EpochSampler", "MAX_RANDAUGMENT"]

MAX_RANDAUGMENT = 16  # RandAugment ops per image: more than this only repeats the ops (and used to hang the loop)


@dataclass
class ImageObjectiveConfig(ObjectiveConfig):
    """Epochs over the training images, the schedule's unit and the augmentations."""

    epochs: int = option(10, "number of epochs", low=1, high=1_000_000, resume="free")
    warmup_epochs: float = option(1.0, "linear warm-up length in epochs", low=0.0, high=1e6)
    schedule: str = option("step", "cosine updated every 'step' or once per 'epoch'", choices=("step", "epoch"))
    shift: int = option(0, "random translation by up to N pixels (0: off)", low=0, high=1 << 12)
    crop_scale: float = option(0.0, "random resized crop: smallest area fraction (0: off)", low=0.0, high=1.0)
    flip: bool = option(False, "random horizontal flips")
    randaugment: int = option(0, "RandAugment-like ops per image (0: off)", low=0, high=MAX_RANDAUGMENT)
    randaugment_magnitude: int = option(9, "RandAugment magnitude, 0..30", low=0, high=30, example=14)
    resize: int = option(0, "resize every image to N x N before the model (0: off)", low=0, high=1 << 14)


class EpochSampler(RoundSampler):
    """Rounds of one epoch each over a :class:`GlobalBatchSampler`."""

    def __init__(self, n: int, batch_size: int, epochs: int, generator: torch.Generator, rank: int, world: int,
                 min_size: int):
        self.inner = GlobalBatchSampler(n, batch_size, generator, rank, world, min_size)
        self.lengths = [len(self.inner.sizes)] * epochs

    def begin_round(self, r: int, skip: int = 0) -> None:
        self.inner.begin_epoch(skip)

    def global_size(self, batch: int) -> int:
        return self.inner.global_size(batch)

    def __iter__(self):
        return iter(self.inner)


class ImageObjective(Objective):
    """Base of the objectives on labelled images (classification, MCR²)."""

    task = "image"
    round_name = "epoch"
    unit = "images"

    def to(self, device: torch.device) -> "ImageObjective":
        super().to(device)
        c = self.config
        self.augment = Augmenter(c, self.data.mean, self.data.std, self.data.num_classes)
        return self

    def dataset(self):
        return self.data.train_set

    def sampler(self, batch_size: int, generator: torch.Generator, rank: int, world: int,
                min_size: int) -> RoundSampler:
        return EpochSampler(len(self.data.train_set), batch_size, self.config.epochs, generator, rank, world,
                            min_size)

    def warmup_steps(self, engine_config, steps_per_round: int) -> int:
        return round(self.config.warmup_epochs * steps_per_round)

    def scheduler_unit(self, steps_per_round: int) -> int | None:
        return steps_per_round if self.config.schedule == "epoch" else None

    def prepare(self, batch, generator: torch.Generator) -> Inputs:
        x, y = batch
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        x, target = self.augment(x, y, generator)
        return Inputs(x, target, len(y))

    def eval_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment.eval(x.to(self.device))

    def activation_bytes(self, model: nn.Module, micro_batch: int) -> int:
        c = self.config
        h, w = (c.resize, c.resize) if c.resize else self.data.image_size
        pixels = micro_batch * self.data.channels * h * w * 4
        tokens = getattr(getattr(model, "config", None), "num_patches", 0) + 1
        dim, depth = getattr(model, "dim", 0), getattr(model, "depth", 0)
        grid_scale = (h * w) / max(1, self.data.image_size[0] * self.data.image_size[1])
        return int(3 * pixels + micro_batch * tokens * grid_scale * dim * depth * 2 * 4)

    def saved_extras(self) -> dict:
        pre = self.data.preprocessing() if hasattr(self.data, "preprocessing") else {
            "mean": list(self.data.mean), "std": list(self.data.std), "image_size": list(self.data.image_size),
            "channels": self.data.channels}
        if self.config.resize:
            pre = {**pre, "resize": self.config.resize}
        return {"data": self.data.spec, "preprocessing": pre}
