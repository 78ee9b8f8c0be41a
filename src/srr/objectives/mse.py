"""The square loss on one-hot targets: ``½‖f(x) − e_y‖²`` summed over the classes, averaged over the images.

The loss of the feature-ansatz reference setup (an MLP trained with MSE on one-hot labels), next to cross-entropy.
Everything else — epochs, augmentations, evaluation — is the classification objective's; the held-out figures are
the mean square loss and the accuracy of the largest output.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import register_objective
from .classification import Classification
from .images import ImageObjectiveConfig

__all__ = ["MSEConfig", "MeanSquaredError"]


@dataclass
class MSEConfig(ImageObjectiveConfig):
    """The square loss on one-hot labels."""


@register_objective
class MeanSquaredError(Classification):
    """½‖f(x) − e_y‖² on the head's outputs."""

    name = "mse"
    default_model = "mlp_nano"
    default_recipe = None
    Config = MSEConfig

    def _square(self, logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        loss = 0.5 * (logits.float() - F.one_hot(y, logits.shape[-1]).float()).square().sum(-1)
        return loss.mean() if reduction == "mean" else loss.sum()

    def loss(self, net, inputs):
        return self._square(net(inputs.x), inputs.target), {}

    @torch.no_grad()
    def evaluate(self, net, engine) -> dict:
        test = self.data.test_set
        loss_sum, correct, count = 0.0, 0, 0
        for idx in engine.shard_batches(len(test), 512):
            xb, yb = test.__getitems__(idx)
            yb = yb.to(self.device)
            with engine.autocast():
                out = net(self.eval_input(xb)).float()
            loss_sum += float(self._square(out, yb, "sum"))
            correct += int((out.argmax(-1) == yb).sum())
            count += len(yb)
        loss_sum, correct, count = engine.all_reduce([loss_sum, correct, count])
        return {"test_loss": loss_sum / count, "test_accuracy": correct / count}
