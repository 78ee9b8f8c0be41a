"""Classifiers on learned features, as used to evaluate ReduNet and MCR²: nearest subspace and k nearest neighbours.

* Nearest subspace: for every class j, the top ``n_components`` right singular vectors U_j (d × r) of its training
  features (uncentred, as the authors' ``nearsub``); a sample z goes to ``argmin_j ‖(I − U_j U_jᵀ) z‖``.
* k-NN: the ``k`` training features with the largest inner product ``⟨z, z_i⟩`` (the cosine similarity for unit
  features) vote; ties go to the smallest label.
* Weighted k-NN (the self-supervised protocol): features L2-normalised, the ``k`` training features of largest
  cosine similarity s_i vote for their class with weight ``exp(s_i / T)`` (T = 0.07, k = 20 by default); the class
  of largest total weight wins (ties: the smallest label).

Features are (m, …) and flattened per sample; no normalisation happens inside (MCR² and ReduNet features are unit
norm already).
"""
from __future__ import annotations

import numbers

import torch
from torch import Tensor

from .. import checks
from ..checks import check_allocation, check_int
from ..errors import ConfigError, DataError

__all__ = ["class_subspaces", "nearest_subspace", "knn", "weighted_knn", "accuracy"]


def _flat(z: Tensor, name: str) -> Tensor:
    if not torch.is_tensor(z) or z.dim() < 2:
        raise DataError(f"{name} must be a tensor (m, d, …) with samples in rows")
    if z.is_complex():
        raise DataError(f"{name} must be real")
    z = z.flatten(1)
    checks.check_finite(z, name)  # a NaN would silently decide every comparison
    return z.double()


def _labels(y: Tensor, m: int, num_classes: int | None) -> tuple[Tensor, int]:
    y = checks.as_tensor(y, "labels", error=DataError)
    if y.is_floating_point() or y.is_complex():
        raise DataError(f"labels must be integers, found {y.dtype}")
    return checks.check_labels(y.reshape(-1), num_classes, count=m)


def _same_width(train: Tensor, test: Tensor) -> None:
    if test.shape[1] != train.shape[1]:
        raise DataError(f"test features have {test.shape[1]} entries per sample, the training features "
                        f"{train.shape[1]}")


def class_subspaces(features: Tensor, labels: Tensor, n_components: int, num_classes: int | None = None) -> list:
    """Per class, the orthonormal basis (d × r) of its top-r principal directions (uncentred); ``None`` for a class
    without samples. r is ``min(n_components, m_j, d)``."""
    n_components = check_int(n_components, "n_components", low=1)
    z = _flat(features, "features")
    y, k = _labels(labels, len(z), num_classes)
    return _subspaces(z, y, k, n_components, num_classes)


def _subspaces(z: Tensor, y: Tensor, k: int, n_components: int, num_classes: int | None) -> list:
    check_allocation(k * 1024 + z.numel() * 8 * 2, f"class_subspaces: K = {k:,} classes (num_classes={num_classes})")
    bases = []
    for j in range(k):
        zj = z[y == j]
        if len(zj) == 0:
            bases.append(None)
            continue
        _, _, vh = torch.linalg.svd(zj, full_matrices=False)
        bases.append(vh[:n_components].mT)
    return bases


def nearest_subspace(train: Tensor, train_labels: Tensor, test: Tensor, n_components: int = 10,
                     num_classes: int | None = None) -> Tensor:
    """Predicted labels of ``test``: the class whose top-``n_components`` subspace leaves the smallest residual."""
    n_components = check_int(n_components, "n_components", low=1)
    z = _flat(train, "train features")
    y, k = _labels(train_labels, len(z), num_classes)
    x = _flat(test, "test features")
    _same_width(z, x)
    check_allocation(k * (len(x) + 128) * 8, f"nearest_subspace: residuals of {len(x):,} test samples for K = {k:,} "
                     f"classes (num_classes={num_classes})")
    scores = []
    for u in _subspaces(z, y, k, n_components, num_classes):
        if u is None:
            scores.append(torch.full((len(x),), float("inf"), dtype=x.dtype))
        else:
            scores.append(torch.linalg.vector_norm(x - (x @ u) @ u.mT, dim=1))
    return torch.stack(scores).argmin(dim=0)


def _knn_inputs(what: str, train, train_labels, test, k, num_classes, chunk):
    """The checked inputs of a k-NN vote: flat features, labels, class count, k and chunk, with the memory of one
    chunk's similarities and votes checked before they are made."""
    z = _flat(train, "train features")
    y, nk = _labels(train_labels, len(z), num_classes)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= len(z):
        raise ConfigError(f"k must lie in [1, {len(z)}] (an integer), got {k!r}")
    k = int(k)
    chunk = check_int(chunk, "chunk", low=1)
    x = _flat(test, "test features")
    _same_width(z, x)
    rows = min(chunk, len(x))
    check_allocation(rows * (len(z) + 2 * nk + 2 * k) * 8, f"{what}: the similarities of a chunk of {rows:,} test "
                     f"samples (chunk={chunk}) to {len(z):,} training samples, and their votes for K = {nk:,} classes")
    return z, y, nk, x, k, chunk


def knn(train: Tensor, train_labels: Tensor, test: Tensor, k: int = 5, num_classes: int | None = None,
        chunk: int = 2048) -> Tensor:
    """Predicted labels of ``test`` by a majority vote of the ``k`` most similar training features."""
    z, y, nk, x, k, chunk = _knn_inputs("knn", train, train_labels, test, k, num_classes, chunk)
    preds = []
    for i in range(0, len(x), chunk):
        idx = (x[i:i + chunk] @ z.mT).topk(k, dim=1).indices
        votes = torch.zeros(len(idx), nk, dtype=torch.long).scatter_add_(1, y[idx], torch.ones_like(idx))
        preds.append(votes.argmax(dim=1))  # first maximum: ties go to the smallest label
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def weighted_knn(train: Tensor, train_labels: Tensor, test: Tensor, k: int = 20, temperature: float = 0.07,
                 num_classes: int | None = None, chunk: int = 2048) -> Tensor:
    """Predicted labels of ``test``: votes of the ``k`` most cosine-similar training features, weighted by
    ``exp(similarity / temperature)`` (module docstring)."""
    temperature = checks.check_number(temperature, "temperature", low=0.0, high=1e6, low_open=True)
    z, y, nk, x, k, chunk = _knn_inputs("weighted_knn", train, train_labels, test, k, num_classes, chunk)
    z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    preds = []
    for i in range(0, len(x), chunk):
        sim, idx = (x[i:i + chunk] @ z.mT).topk(k, dim=1)
        votes = torch.zeros(len(idx), nk, dtype=z.dtype).scatter_add_(1, y[idx], torch.exp(sim / temperature))
        preds.append(votes.argmax(dim=1))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def accuracy(pred: Tensor, labels: Tensor) -> float:
    """Fraction of ``pred`` equal to ``labels``."""
    pred, labels = torch.as_tensor(pred).reshape(-1), torch.as_tensor(labels).reshape(-1)
    if pred.numel() != labels.numel() or pred.numel() == 0:
        raise DataError(f"{pred.numel()} predictions for {labels.numel()} labels")
    return float((pred.cpu() == labels.cpu()).double().mean())
