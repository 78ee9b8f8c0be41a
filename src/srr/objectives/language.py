"""Next-token language modelling on random windows of a text, evaluated in nats per token and bits per byte.

Each step's global batch is ``batch_size`` windows of ``context + 1`` consecutive tokens at uniformly random offsets
of the training split, drawn from the data generator one round at a time (a round is ``eval_every`` steps), so a
resumed run replays the same windows; process r of W takes windows r, r+W, …. The loss is the mean next-token
cross-entropy over all positions (every window has ``context`` targets, so the mean over windows is the mean over
tokens). Validation runs over non-overlapping windows from the start of the validation split — the same windows every
time, at most ``eval_tokens`` targets, shared between the processes — so successive figures are comparable; bits per
byte = nats per token / ln 2 with the byte tokenizer.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.text import bits_per_byte
from ..data.windows import Windows, validation_windows
from ..errors import ConfigError, DataError
from ..settings import option
from .base import Inputs, Objective, ObjectiveConfig, RoundSampler, register_objective

__all__ = ["LanguageConfig", "LanguageModelling", "Windows", "WindowSampler", "evaluate_lm", "validation_windows"]

EVAL_BATCH = 32


@dataclass
class LanguageConfig(ObjectiveConfig):
    """Steps of random windows; validation every ``eval_every`` steps."""

    steps: int = option(1000, "optimiser steps", low=1, high=1 << 40, resume="free")
    eval_every: int = option(100, "steps between validations (and at the end)", low=1, high=1 << 40)
    context: int | None = option(None, "window length in tokens (default: the model's context)", low=1,
                                 high=1 << 20, example=16)
    warmup_steps: int | None = option(None, "linear warm-up steps (default 5 % of --steps)", low=0, high=1 << 40,
                                      example=3)
    eval_tokens: int = option(32768, "validation targets per evaluation (0: the whole validation split)", low=0,
                              high=1 << 40, resume="free")


class WindowSampler(RoundSampler):
    """Random window offsets, ``batch_size`` per step, rounds of ``eval_every`` steps (the last one shorter)."""

    def __init__(self, n: int, batch_size: int, steps: int, eval_every: int, generator: torch.Generator,
                 rank: int, world: int):
        self.n, self.batch_size, self.generator, self.rank, self.world = n, batch_size, generator, rank, world
        self.lengths = [eval_every] * (steps // eval_every) + ([steps % eval_every] if steps % eval_every else [])
        self._plan, self._skip = None, 0

    def begin_round(self, r: int, skip: int = 0) -> None:
        self._plan = torch.randint(0, self.n, (self.lengths[r], self.batch_size), generator=self.generator)
        self._skip = skip

    def global_size(self, batch: int) -> int:
        return self.batch_size

    def __iter__(self):
        plan, skip = self._plan, self._skip
        self._plan = None
        for j in range(skip, len(plan)):
            yield plan[j][self.rank::self.world].tolist()


@torch.no_grad()
def evaluate_lm(model: nn.Module, tokens: Tensor, context: int, max_tokens: int = 0, batch_size: int = EVAL_BATCH,
                device: torch.device | None = None) -> float:
    """Mean next-token cross-entropy (nats per token) over the validation windows of :func:`validation_windows`."""
    device = device or next(model.parameters()).device
    c, starts = validation_windows(len(tokens), context, max_tokens)
    total = _window_loss(model, tokens, c, starts.tolist(), batch_size, device)
    return total / (len(starts) * c)


def _window_loss(model, tokens, c, starts, batch_size, device) -> float:
    was = model.training
    model.eval()
    total = 0.0
    offsets = torch.arange(c + 1)
    for i in range(0, len(starts), batch_size):
        w = tokens[torch.as_tensor(starts[i:i + batch_size]).unsqueeze(1) + offsets].to(device)
        logits = model(w[:, :-1])
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), w[:, 1:].reshape(-1),
                                       reduction="sum"))
    model.train(was)
    return total


@register_objective
class LanguageModelling(Objective):
    """Next-token prediction of a causal language model on text."""

    name = "lm"
    default_model = "crate_gpt_nano"
    default_data = None  # a text must be named
    task = "lm"
    Config = LanguageConfig
    defaults = {"batch_size": 32, "weight_decay": 0.1, "beta2": 0.95, "grad_clip": 1.0, "min_lr_ratio": 0.1}
    round_name = None
    unit = "tokens"

    def check_model(self, model: nn.Module) -> None:
        data = self.data
        model_context = getattr(model, "context", None)
        self.context = self.config.context or model_context
        if self.context is None:
            raise ConfigError("the model has no context length; pass --context")
        if model_context is not None and self.context > model_context:
            raise ConfigError(f"context {self.context} exceeds the model's context of {model_context}")
        if len(data.train) <= self.context:
            raise DataError(f"{data.spec}: the training split holds {len(data.train)} tokens, not more than the "
                            f"context of {self.context}; use a longer text or a smaller --context")
        if getattr(model, "vocab_size", data.vocab_size) < data.vocab_size:
            raise ConfigError(f"the model's vocabulary ({model.vocab_size}) is smaller than the data's "
                              f"({data.vocab_size})")

    @property
    def item_size(self) -> int:
        return self.context

    def dataset(self):
        return Windows(self.data.train, self.context)

    def sampler(self, batch_size: int, generator: torch.Generator, rank: int, world: int,
                min_size: int) -> RoundSampler:
        if batch_size < min_size:
            raise ConfigError(f"--batch-size {batch_size} cannot feed {min_size} processes x micro-batches")
        return WindowSampler(len(self.data.train) - self.context, batch_size, self.config.steps,
                             self.config.eval_every, generator, rank, world)

    def warmup_steps(self, engine_config, steps_per_round: int) -> int:
        w = self.config.warmup_steps
        return w if w is not None else max(1, self.config.steps // 20)

    def prepare(self, batch, generator: torch.Generator) -> Inputs:
        x, y = batch
        return Inputs(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True), len(x))

    def activation_bytes(self, model: nn.Module, micro_batch: int) -> int:
        tokens = micro_batch * self.context
        vocab, dim, depth = getattr(model, "vocab_size", 256), getattr(model, "dim", 0), getattr(model, "depth", 0)
        return int(tokens * (3 * vocab + 2 * dim * depth) * 4)

    def loss(self, net: nn.Module, inputs: Inputs):
        logits = net(inputs.x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), inputs.target.reshape(-1)), {}

    @torch.no_grad()
    def evaluate(self, net: nn.Module, engine) -> dict:
        tokens = self.data.val
        c, starts = validation_windows(len(tokens), self.context, self.config.eval_tokens)
        mine = starts[engine.rank::engine.world].tolist()
        with engine.autocast():
            total = _window_loss(net, tokens, c, mine, EVAL_BATCH, self.device) if mine else 0.0
        (total,) = engine.all_reduce([total])
        val = total / (len(starts) * c)
        return {"val_loss": val, "val_bpb": bits_per_byte(val)}

    def headline(self, record: dict) -> dict:
        return {"val_loss": record.get("val_loss"), "val_bpb": record.get("val_bpb"),
                "train_loss": record.get("train_loss"), "context": self.context,
                "tokenizer": self.data.tokenizer}

    def saved_extras(self) -> dict:
        return {"data": self.data.spec, "tokenizer": self.data.tokenizer}

    @classmethod
    def summary_line(cls, s: dict) -> str:
        rate = s.get("tokens_per_second") or 0.0
        return (f"{s['model']} on {s['data']}: validation {s['val_loss']:.4f} nats/token = {s['val_bpb']:.4f} "
                f"bits/byte ({s['parameters']:,} parameters, {s['steps']} steps, {rate:,.0f} tokens/s, "
                f"{s['seconds']:.1f} s)")

