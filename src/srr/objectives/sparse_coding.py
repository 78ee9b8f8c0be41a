"""Sparse coding: train a network that maps signals x to codes z (LISTA) on ``--data sparse:…``.

A round is one epoch over the training pairs (x, z), as for images (:class:`~srr.objectives.images.EpochSampler`).
The loss of a micro-batch is the mean over its items of

* ``--target codes`` (default): ``‖ẑ − z‖²``, the squared distance of the network's code to the code that generated
  the signal (supervised, as LISTA is usually trained);
* ``--target lasso``: the LASSO objective ``½‖x − D ẑ‖² + λ‖ẑ‖₁`` (λ = ``--lasso-lambda``) on the data's dictionary
  D — unsupervised, the network learns to solve the LASSO fast.

Evaluation after every epoch, on the test split: ``test_loss`` (the same loss) and ``test_nmse_db`` =
``10·log₁₀(Σ‖ẑ − z‖² / Σ‖z‖²)``, the normalised error of the codes in decibels (−20 dB: 1 % of the codes' energy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import DataError
from ..settings import option
from .base import Inputs, Objective, ObjectiveConfig, RoundSampler, register_objective
from .images import EpochSampler

__all__ = ["SparseCodingConfig", "SparseCoding", "nmse_db"]

EVAL_BATCH = 1024


def nmse_db(error_energy: float, code_energy: float) -> float:
    """``10·log₁₀(error / energy)``; −inf for an exact answer (never NaN: an all-zero set of codes is refused)."""
    if not code_energy > 0:
        raise DataError("the test codes are all zero: their normalised error is undefined")
    return 10 * math.log10(error_energy / code_energy) if error_energy > 0 else -math.inf


@dataclass
class SparseCodingConfig(ObjectiveConfig):
    """Epochs over the training pairs; the target of the loss."""

    epochs: int = option(10, "number of epochs", low=1, high=1_000_000, resume="free")
    warmup_epochs: float = option(1.0, "linear warm-up length in epochs", low=0.0, high=1e6)
    target: str = option("codes", "what the network is trained for: the generating 'codes' (squared error) or the "
                                  "'lasso' objective ½‖x − Dz‖² + λ‖z‖₁", choices=("codes", "lasso"))
    lasso_lambda: float = option(0.05, "λ of --target lasso", low=0.0, high=1e6)


@register_objective
class SparseCoding(Objective):
    """Signals to sparse codes (LISTA), on pairs drawn by ``--data sparse:…``."""

    name = "sparse_coding"
    task = "sparse"
    Config = SparseCodingConfig
    defaults = {"batch_size": 256, "weight_decay": 0.0}
    default_model = "lista_nano"
    default_data = "sparse"
    round_name = "epoch"
    unit = "codes"

    def check_model(self, model: nn.Module) -> None:
        data = self.data
        with torch.no_grad():
            out = model(data.test_set.x[:2].to(self.device))
        if out.dim() != 2 or out.shape[1] != data.atoms or getattr(model, "dim", data.d) != data.d:
            raise DataError(f"{data.spec} has signals of dimension {data.d} and codes over {data.atoms} atoms, but the "
                            f"model maps {getattr(model, 'dim', '?')} -> {out.shape[-1]}; drop --set dim/atoms")
        self.dictionary = data.dictionary.to(self.device)

    def dataset(self):
        return self.data.train_set

    def sampler(self, batch_size: int, generator: torch.Generator, rank: int, world: int,
                min_size: int) -> RoundSampler:
        return EpochSampler(len(self.data.train_set), batch_size, self.config.epochs, generator, rank, world,
                            min_size)

    def warmup_steps(self, engine_config, steps_per_round: int) -> int:
        return round(self.config.warmup_epochs * steps_per_round)

    def prepare(self, batch, generator: torch.Generator) -> Inputs:
        x, z = batch
        return Inputs(x.to(self.device, non_blocking=True), z.to(self.device, non_blocking=True), len(x))

    def _losses(self, codes: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The per-item loss (B,)."""
        codes = codes.float()
        if self.config.target == "codes":
            return (codes - z).square().sum(-1)
        residual = x - codes @ self.dictionary.T
        return 0.5 * residual.square().sum(-1) + self.config.lasso_lambda * codes.abs().sum(-1)

    def loss(self, net: nn.Module, inputs: Inputs):
        return self._losses(net(inputs.x), inputs.x, inputs.target).mean(), {}

    @torch.no_grad()
    def evaluate(self, net: nn.Module, engine) -> dict:
        test = self.data.test_set
        loss_sum, err, energy, count = 0.0, 0.0, 0.0, 0
        for idx in engine.shard_batches(len(test), EVAL_BATCH):
            x, z = (t.to(self.device) for t in test.__getitems__(idx))
            with engine.autocast():
                codes = net(x).float()
            loss_sum += float(self._losses(codes, x, z).sum())
            err += float((codes - z).square().sum())
            energy += float(z.square().sum())
            count += len(x)
        loss_sum, err, energy, count = engine.all_reduce([loss_sum, err, energy, count])
        return {"test_loss": loss_sum / count, "test_nmse_db": nmse_db(err, energy)}

    def headline(self, record: dict) -> dict:
        return {"test_nmse_db": record.get("test_nmse_db"), "test_loss": record.get("test_loss")}

    @classmethod
    def summary_line(cls, s: dict) -> str:
        v = s.get("test_nmse_db")
        shown = f"{v:.2f} dB" if isinstance(v, float) else "n/a (stopped before the first epoch ended)"
        return (f"{s['model']} on {s['data']}: test NMSE of the codes {shown} ({s['parameters']:,} parameters, "
                f"{s['seconds']:.1f} s)")

    def activation_bytes(self, model: nn.Module, micro_batch: int) -> int:
        return int(micro_batch * (self.data.d + 3 * self.data.atoms * getattr(model, "depth", 1)) * 4)
