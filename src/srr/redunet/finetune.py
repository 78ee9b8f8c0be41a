"""Optional back-propagation fine-tuning of a constructed ReduNet: its operators E and C_j become trainable weights.

Two objectives:

* ``"ce"``: cross-entropy of the last layer's class distances as logits, ``−‖C_j z‖ / T`` (the network's own
  classifier, at temperature T = ``temperature``, 1 by default). Not at the network's λ: with λ = 500 the softmax of
  ``−λ ‖C_j z‖`` is saturated on the training set of a constructed network (its cross-entropy is 0.0 in float32 and
  gives no gradient, so fine-tuning changed nothing); on the digits the distances of a 5-layer network differ by
  about 1 between the two nearest classes, where a unit temperature gives a cross-entropy near 1;
* ``"mcr2"``: the MCR² loss (:class:`srr.losses.MCR2` with the network's ε, γ₁ = γ₂ = 1) of the output features,
  flattened per sample.

AdamW with a constant learning rate over mini-batches; γ_j, the lift and the construction are left as they are.
The operators stop being exact inverses (or Hermitian) once trained: the network is then an ordinary deep network
initialised by the construction.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from ..errors import ConfigError, NonFiniteError
from ..losses import MCR2
from .network import ReduNet

__all__ = ["fine_tune", "fine_tune_loss"]


def fine_tune_loss(net: ReduNet, x: Tensor, labels: Tensor, objective: str = "ce",
                   temperature: float = 1.0) -> Tensor:
    """The fine-tuning objective on one batch (differentiable in E and C_j)."""
    from ..checks import check_number

    if objective not in ("ce", "mcr2"):
        raise ConfigError(f"fine-tuning objective must be 'ce' or 'mcr2', got {objective!r}")
    temperature = check_number(temperature, "temperature", low=0.0, low_open=True, high=1e6)
    z = net.features_in(x)
    for layer in net.layers[:-1]:
        z = layer(z)
    last = net.layers[-1]
    if objective == "ce":
        return F.cross_entropy(last.membership_logits(z) / (last.lam * temperature), labels)
    out = last(z)
    return MCR2(eps=net.eps, num_classes=net.num_classes)(out.flatten(1), labels)


def fine_tune(net: ReduNet, x: Tensor, labels: Tensor, epochs: int = 5, lr: float = 1e-3, batch_size: int = 256,
              objective: str = "ce", seed: int = 0, progress: bool = False, temperature: float = 1.0) -> list[float]:
    """Train the operators of a built ``net`` on ``(x, labels)``; returns the mean loss of every epoch."""
    net.check_built()
    if epochs < 1 or lr <= 0 or batch_size < 2:
        raise ConfigError("fine-tuning needs epochs ≥ 1, lr > 0 and batch_size ≥ 2")
    labels = torch.as_tensor(labels).long()
    params = [p for layer in net.layers for p in (layer.E, layer.Cs)]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    history = []
    for epoch in tqdm(range(epochs), desc="fine-tune", disable=not progress):
        perm, total = torch.randperm(len(x), generator=g), 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = fine_tune_loss(net, x[idx], labels[idx], objective, temperature)
            if not math.isfinite(float(loss.detach())):
                raise NonFiniteError(f"fine-tuning loss became {float(loss.detach())} in epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(x))
    return history
