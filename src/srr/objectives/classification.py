"""Supervised classification: cross-entropy on the model's logits, with label smoothing, mixup and cutmix.

The loss of a micro-batch is the mean cross-entropy (in float32, whatever the autocast precision) against the labels,
smoothed by ``label_smoothing``; with mixup or cutmix the targets are the same mixture of smoothed one-hot vectors
as the images. Evaluation after every epoch: the mean cross-entropy and the accuracy on the test split (without
smoothing), the split shared between the processes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError
from ..settings import option
from .base import register_objective
from .images import ImageObjective, ImageObjectiveConfig

__all__ = ["ClassificationConfig", "Classification", "EVAL_BATCH"]

EVAL_BATCH = 512


@dataclass
class ClassificationConfig(ImageObjectiveConfig):
    """Cross-entropy on the head's logits."""

    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy", low=0.0, high=1.0)
    mixup: float = option(0.0, "mixup Beta(alpha, alpha) (0: off)", low=0.0, high=1e3)
    cutmix: float = option(0.0, "cutmix Beta(alpha, alpha) (0: off); with mixup, each batch picks one", low=0.0,
                           high=1e3)
    srr_reg: float = option(0.0, "weight c of the SRR regulariser c*(R^c - R) of one layer (0: off)", low=0.0,
                            high=1e6)
    srr_layer: int = option(-1, "the layer the SRR regulariser acts on (negative: from the end)", low=-4096,
                            high=4095)


@register_objective
class Classification(ImageObjective):
    """Cross-entropy classification of labelled images."""

    name = "classification"
    default_model = "crate_nano"
    default_recipe = "digits_demo"
    Config = ClassificationConfig

    def check_model(self, model: nn.Module) -> None:
        if getattr(self.config, "srr_reg", 0):  # subclasses with their own settings may not have it
            from ..analysis.complexity import check_srr_layer

            check_srr_layer(model, self.config.srr_layer)
        with torch.no_grad():
            was = model.training
            logits = model.eval()(self.eval_input(self.data.test_set.__getitems__([0, 1])[0]))
            model.train(was)
        if logits.dim() != 2 or logits.shape[-1] < self.data.num_classes:
            raise DataError(f"{self.data.spec} has labels up to {self.data.num_classes - 1} but the model has "
                            f"{logits.shape[-1]} outputs; drop --set num_classes or set it to {self.data.num_classes}")

    def loss(self, net: nn.Module, inputs):
        logits = net(inputs.x).float()
        if inputs.target.dtype == torch.long:
            loss = F.cross_entropy(logits, inputs.target, label_smoothing=self.config.label_smoothing)
        else:
            loss = F.cross_entropy(logits, inputs.target)
        if not self.config.srr_reg:
            return loss, {}
        from ..analysis.complexity import srr_penalty

        term, _ = srr_penalty(getattr(net, "module", net), inputs.x, self.config.srr_layer)
        return loss + self.config.srr_reg * term.float(), {"srr": term.detach()}

    @torch.no_grad()
    def evaluate(self, net: nn.Module, engine) -> dict:
        test = self.data.test_set
        loss_sum, correct, count = 0.0, 0, 0
        for idx in engine.shard_batches(len(test), EVAL_BATCH):
            xb, yb = test.__getitems__(idx)
            yb = yb.to(self.device)
            with engine.autocast():
                logits = net(self.eval_input(xb)).float()
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(-1) == yb).sum())
            count += len(yb)
        loss_sum, correct, count = engine.all_reduce([loss_sum, correct, count])
        return {"test_loss": loss_sum / count, "test_accuracy": correct / count}

    @classmethod
    def summary_line(cls, s: dict) -> str:
        acc = s.get("test_accuracy")
        shown = f"{acc:.4f}" if acc is not None else "n/a (stopped before the first epoch ended)"
        return f"{s['model']} on {s['data']}: test accuracy {shown} ({s['parameters']:,} parameters, " \
               f"{s['seconds']:.1f} s)"

    def headline(self, record: dict) -> dict:
        return {"test_accuracy": record.get("test_accuracy"), "test_loss": record.get("test_loss")}
