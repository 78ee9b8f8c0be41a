"""What an objective is: the plug-in of the training engine that supplies batches, a loss and an evaluation.

The engine (:func:`srr.training.train`) owns everything that is the same for every objective — optimiser, schedule,
accumulation, clipping, mixed precision, ``torch.compile``, data parallelism, checkpoints and exact resume, divergence
handling, logs, the final save. An objective owns what differs:

* ``Config``: a settings dataclass of its own fields (``--epochs`` and the augmentations for images, ``--steps`` and
  ``--context`` for text, ``--eps`` for MCR², …), each with help text and bounds; ``defaults`` overrides defaults of
  the engine (MCR² wants batches of 512, language models β₂ = 0.95);
* ``dataset()`` and ``sampler(...)``: the training items and the order in which global batches draw them, in
  *rounds* (an epoch of images, or ``eval_every`` steps of text windows) — the engine evaluates after every round;
* ``network(model)``: the module that is trained (the model itself, or the model plus heads);
* ``prepare(batch, generator)``: a micro-batch on the device, augmented;
* either ``loss(net, inputs)`` — a mean over the items of the micro-batch, so micro-batches and processes combine
  by weighted sums — or, for a loss that is not a mean over items (MCR²: log-determinants of Gram matrices),
  ``statistics(net, inputs)`` (sums over items) and ``loss_from(stats)``; the engine then sums the statistics over
  micro-batches and processes before the loss, exactly;
* ``evaluate(net, engine)``: metrics on held-out data after each round;
* ``state_dict()`` / ``load_state_dict()`` for state beyond the trained module (a teacher, a centre), saved in
  checkpoints.

A new objective is one module with one such class and one ``@register_objective`` line.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..settings import Settings

__all__ = ["Objective", "ObjectiveConfig", "RoundSampler", "Inputs", "register_objective", "get_objective",
           "list_objectives"]


@dataclass
class ObjectiveConfig(Settings):
    """Base of the objectives' settings."""


@dataclass
class Inputs:
    """One prepared micro-batch: the network's input, its target, and how many items it counts in the mean."""

    x: Any
    target: Any
    count: int


class RoundSampler:
    """The global batches of a run, in rounds, each split between the processes without padding.

    ``lengths[r]`` is the number of optimiser steps of round r; ``begin_round(r, skip)`` draws round r's plan from
    the data generator (so that a resumed run can replay it) and starts after ``skip`` batches; iterating yields the
    item indices of this process's share of each global batch; ``global_size(j)`` is the size of global batch j.
    """

    lengths: list[int]

    def begin_round(self, r: int, skip: int = 0) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def global_size(self, batch: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return sum(self.lengths)


class Objective:
    """Base class of the objectives (see the module docstring)."""

    name: ClassVar[str]
    task: ClassVar[str]  # the kind of data and model: "image", "lm" or "sparse"
    Config: ClassVar[type[ObjectiveConfig]]
    defaults: ClassVar[dict] = {}  # overrides of the engine's defaults
    decomposable: ClassVar[bool] = True  # the loss is a mean over items
    default_model: ClassVar[str | None] = None  # the model of ``srr train --objective NAME`` without --model
    default_recipe: ClassVar[str | None] = None  # the recipe used when none is named (the CPU demo)
    default_data: ClassVar[str | None] = "digits"  # the data of ``srr train --objective NAME`` without --data
    round_name: ClassVar[str] = "epoch"  # what a round is called in logs ("epoch"; None for text: rounds by steps)
    unit: ClassVar[str] = "images"  # what the throughput counts

    def __init__(self, config: ObjectiveConfig, data):
        if not isinstance(config, self.Config):
            raise ConfigError(f"{self.name} takes a {self.Config.__name__}, got {type(config).__name__}")
        self.config, self.data = config, data

    # -- set-up ---------------------------------------------------------------------------------------------------
    def check_model(self, model: nn.Module) -> None:
        """Refuse a model that cannot serve this objective on this data (before any progress bar)."""

    def network(self, model: nn.Module) -> nn.Module:
        """The module the engine trains (and wraps for data parallelism)."""
        return model

    def to(self, device: torch.device) -> "Objective":
        self.device = device
        return self

    def warmup_steps(self, engine_config, steps_per_round: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def scheduler_unit(self, steps_per_round: int) -> int | None:
        """Steps per schedule update (None: every step)."""
        return None

    def activation_bytes(self, model: nn.Module, micro_batch: int) -> int:
        """A lower estimate of the memory one micro-batch's forward and backward pass needs."""
        return 0

    # -- data ---------------------------------------------------------------------------------------------------
    def dataset(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def sampler(self, generator: torch.Generator, rank: int, world: int, min_size: int) -> RoundSampler:
        raise NotImplementedError  # pragma: no cover - abstract

    def prepare(self, batch, generator: torch.Generator) -> Inputs:  # pragma: no cover - abstract
        raise NotImplementedError

    def split(self, batch, parts: int) -> list:
        """A fetched batch (a tuple of tensors with items along the first axis) in ``parts`` micro-batches."""
        pieces = [torch.tensor_split(t, parts) for t in batch]
        return [tuple(p[i] for p in pieces) for i in range(parts)]

    # -- the loss -----------------------------------------------------------------------------------------------
    def loss(self, net: nn.Module, inputs: Inputs) -> tuple[Tensor, dict]:
        """The mean loss over the micro-batch's items and extra terms to log (floats or 0-d tensors)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def statistics(self, net: nn.Module, inputs: Inputs) -> dict[str, Tensor]:
        """Sums over the items of the micro-batch from which :meth:`loss_from` computes the loss."""
        raise NotImplementedError  # pragma: no cover - abstract

    def loss_from(self, stats: dict[str, Tensor]) -> tuple[Tensor, dict]:
        raise NotImplementedError  # pragma: no cover - abstract

    def after_step(self, net: nn.Module, step: int, total: int) -> None:
        """Called after every optimiser step (an EMA teacher update)."""

    # -- evaluation and records ---------------------------------------------------------------------------------
    def evaluate(self, net: nn.Module, engine) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def headline(self, record: dict) -> dict:
        """The summary's main figures from the last round's record."""
        return {}

    @classmethod
    def summary_line(cls, summary: dict) -> str:
        """One line for the end of ``srr train``."""
        figures = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in summary.items()
                            if k.startswith(("test_", "val_")) and isinstance(v, float))
        return (f"{summary['model']} on {summary['data']} ({cls.name}): {figures or 'no evaluation'} "
                f"({summary['parameters']:,} parameters, {summary['seconds']:.1f} s)")

    def saved_extras(self) -> dict:
        """What the saved model's ``config.json`` records about its input (data spec, preprocessing, tokenizer)."""
        return {"data": self.data.spec}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


_OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Register an objective class under its ``name`` (a class decorator)."""
    if cls.name in _OBJECTIVES:
        raise ConfigError(f"objective {cls.name!r} is already registered")
    _OBJECTIVES[cls.name] = cls
    return cls


def get_objective(name: str) -> type[Objective]:
    try:
        return _OBJECTIVES[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_OBJECTIVES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown objective {name!r}{hint} (known: {', '.join(sorted(_OBJECTIVES))})") from None


def list_objectives(task: str | None = None) -> list[str]:
    return sorted(n for n, c in _OBJECTIVES.items() if task is None or c.task == task)


def config_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]
