"""Frozen features: collapse diagnostics and a linear probe.

* :func:`collapse_diagnostics` of features Z (n × d, rows L2-normalised first):
  - ``coding_rate``: R(Z, ε) = ½ logdet(I + d/(n ε²) ZᵀZ) (:func:`srr.measures.coding_rate`, natural log);
  - ``effective_rank``: exp of the entropy of the normalised singular values σ_i / Σσ_j (Roy and Vetterli's
    effective rank; 1 for features on one line, d for a spread that fills every direction equally);
  - ``mean_cosine``: the mean cosine similarity between two different images, (‖Σ z_i‖² − n) / (n(n − 1)) for unit
    rows (1 for a collapse onto one point, about 0 for features spread over the sphere).
* :func:`linear_probe`: multinomial logistic regression on standardised frozen features (mean and standard deviation
  of the training features), weights from zero, L-BFGS on the full training set with an L2 penalty ``weight_decay``;
  the test accuracy. Deterministic (no random numbers).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_finite, check_int, check_number
from ..errors import DataError
from ..measures import coding_rate

__all__ = ["collapse_diagnostics", "effective_rank", "mean_cosine", "linear_probe"]


def _unit_rows(z: Tensor, name: str = "features") -> Tensor:
    if not torch.is_tensor(z) or z.dim() != 2 or len(z) < 2:
        raise DataError(f"{name} must be a tensor (n, d) with at least 2 rows")
    check_finite(z, name)
    return F.normalize(z.double(), dim=1)


def effective_rank(z: Tensor) -> float:
    """exp(entropy of σ / Σσ) of the singular values σ of ``z`` (n × d)."""
    s = torch.linalg.svdvals(z.double())
    if float(s.sum()) == 0.0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def mean_cosine(z: Tensor) -> float:
    """The mean cosine similarity over pairs of different rows of ``z``."""
    u = _unit_rows(z)
    n = len(u)
    return float((u.sum(0).square().sum() - n) / (n * (n - 1)))


def collapse_diagnostics(z: Tensor, eps: float = 0.5) -> dict:
    """``coding_rate``, ``effective_rank`` and ``mean_cosine`` of the L2-normalised rows of ``z`` (n × d)."""
    u = _unit_rows(z)
    return {"coding_rate": float(coding_rate(u, eps)), "effective_rank": effective_rank(u),
            "mean_cosine": mean_cosine(u)}


def linear_probe(z_train: Tensor, y_train: Tensor, z_test: Tensor, y_test: Tensor, num_classes: int, *,
                 weight_decay: float = 1e-4, iterations: int = 100) -> float:
    """Test accuracy of a softmax regression fitted to the frozen training features (module docstring)."""
    num_classes = check_int(num_classes, "num_classes", low=1)
    weight_decay = check_number(weight_decay, "weight_decay", low=0.0, high=1e6)
    iterations = check_int(iterations, "iterations", low=1, high=1 << 20)
    for name, z in (("train features", z_train), ("test features", z_test)):
        if not torch.is_tensor(z) or z.dim() != 2 or len(z) == 0:
            raise DataError(f"{name} must be a tensor (n, d) with at least one row")
        check_finite(z, name)
    mean, std = z_train.double().mean(0), z_train.double().std(0).clamp_min(1e-8) if len(z_train) > 1 else 1.0
    a, b = (z_train.double() - mean) / std, (z_test.double() - mean) / std
    w = torch.zeros(a.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")
    y = y_train.long()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ w + bias, y) + weight_decay * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (b @ w + bias).argmax(1)
    return float((pred == y_test.long()).double().mean())
