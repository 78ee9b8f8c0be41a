"""Coding rates of feature sets: R, the class-wise R^c and the rate reduction ΔR = R − R^c (see docs/measures.md).

Conventions, used everywhere in srr:

* ``Z`` holds samples in rows, shape ``(…, m, d)``; leading dimensions are batched.
* ``eps`` is the distortion ε itself, **not ε²**. Code that takes "eps" as ε² (the official MCR² loss, ReduNet,
  SimDINO) converts with ``eps_srr = math.sqrt(eps_theirs)``; the PyPI ``mcr2`` package takes ε like srr.
* natural logarithm, with the ½ factor: ``R(Z) = ½ logdet(I_d + d/(m ε²) ZᵀZ)``.
* No normalisation happens inside unless asked (``normalize=True`` where offered): L2-normalise rows yourself if
  the formula you follow assumes it.
* Log-determinants go through Cholesky on the smaller side of the Gram matrix (see :mod:`srr.measures.logdet`);
  ``dtype=torch.float64`` computes in double precision. Non-finite input raises ``ValueError``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..checks import as_tensor, check_allocation, check_bool, check_labels, check_memberships
from ..errors import ConfigError
from .logdet import _logdet_i_plus, check_eps, compute_dtype, gram_logdet, guard_finite

__all__ = ["coding_rate", "compressed_rate", "rate_reduction", "memberships"]


def _prepare(z: Tensor, eps: float, dtype: torch.dtype | None, who: str) -> tuple[Tensor, float]:
    """Z checked (a real tensor of shape (…, m, d)) and cast to the compute dtype; ε checked."""
    if not torch.is_tensor(z):
        raise ConfigError(f"Z must be a torch.Tensor, got {type(z).__name__}")
    if z.is_complex():
        raise ConfigError(f"Z is complex ({z.dtype}); {who} takes real tensors")
    if z.dim() < 2:
        raise ConfigError(f"Z must have shape (..., m, d) with samples in rows, got shape {tuple(z.shape)}")
    eps = check_eps(eps)
    ct = compute_dtype(z, dtype)
    if ct != z.dtype or not z.is_contiguous():  # a converted or contiguous copy of Z is about to be made
        size = torch.empty((), dtype=ct).element_size()
        check_allocation(z.numel() * size, lambda: f"{who}: a copy of Z {tuple(z.shape)} in {ct}", z.device)
    return z.to(ct), eps


def coding_rate(
    Z: Tensor, eps: float = 0.5, *, normalize: bool = False, dtype: torch.dtype | None = None
) -> Tensor:
    """Coding rate ``R(Z, ε) = ½ logdet(I_d + d/(m ε²) ZᵀZ)`` of each (m × d) matrix in ``Z`` (…, m, d).

    ``eps`` is ε (not ε²); for code that passes ε², use ``eps=sqrt(that)``. Computed on the smaller Gram side.
    ``normalize=True`` takes the rate of the rows L2-normalised (the same value as
    ``coding_rate(F.normalize(Z, dim=-1))``, without a normalised copy of the whole batch).
    ``dtype`` is the compute precision (half precision computes in float32). Returns a tensor of shape
    ``Z.shape[:-2]``.
    """
    normalize = check_bool(normalize, "normalize")
    z, eps = _prepare(Z, eps, dtype, "coding_rate")
    m, d = z.shape[-2], z.shape[-1]
    if m == 0:
        return z.new_zeros(z.shape[:-2])
    return 0.5 * guard_finite(lambda: gram_logdet(z, d / (m * eps**2), normalize=normalize), Z=Z)


def _one_hot(labels: Tensor, k: int, dtype: torch.dtype) -> Tensor:
    """One-hot (…, K) of checked labels, allocated once in ``dtype`` (no int64 one-hot on the way)."""
    out = torch.zeros(*labels.shape, k, dtype=dtype, device=labels.device)
    return out.scatter_(-1, labels.unsqueeze(-1), 1)


def memberships(labels: Tensor, num_classes: int | None = None, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot membership matrix Π (…, m, K) from integer labels (…, m); checks the range and the size.

    Without ``num_classes``, K is the largest label + 1 (see :func:`srr.checks.check_labels` for its limit)."""
    if not isinstance(dtype, torch.dtype):
        raise ConfigError(f"dtype must be a torch dtype, got {dtype!r}")
    labels = as_tensor(labels, "labels")
    flat, k = check_labels(labels.reshape(-1), num_classes, error=ConfigError)
    size = flat.numel() * k * torch.empty((), dtype=dtype).element_size()
    check_allocation(size, lambda: f"memberships: a one-hot matrix of {flat.numel():,} labels × {k:,} classes "
                     f"(num_classes={num_classes})", labels.device)
    return _one_hot(flat.view(labels.shape), k, dtype)


def _class_terms(z: Tensor, pi: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Per-class ``logdet(I + d/(tr Π_k ε²) Zᵀ Π_k Z)`` and tr Π_k for soft or one-hot Π (…, m, K)."""
    d = z.shape[-1]
    counts = pi.sum(-2)  # (…, K)
    zw = z.unsqueeze(-3) * pi.mT.unsqueeze(-1)  # (…, K, m, d): rows weighted by Π_k
    grams = zw.mT @ z.unsqueeze(-3)  # (…, K, d, d)
    scale = d / (counts.clamp_min(1e-12) * eps**2)
    return _logdet_i_plus(grams, scale), counts


def _hard_class_grams(z: Tensor, labels: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Class Gram matrices ZₖᵀZₖ and their sum ZᵀZ, stacked (k + 1, d, d), for one (m × d) matrix and integer
    labels: the rows are sorted by class once, and each class costs one product of its own rows (m·d² in all)."""
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=k)
    parts = torch.stack([c.mT @ c for c in torch.split(z.index_select(0, order), counts.tolist())])
    return torch.cat([parts, parts.sum(0, keepdim=True)]), counts


def compressed_rate(
    Z: Tensor,
    labels_or_memberships: Tensor,
    eps: float = 0.5,
    *,
    num_classes: int | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Class-wise coding rate ``R^c(Z, ε | Π) = Σ_k tr(Π_k)/(2m) · logdet(I + d/(tr(Π_k) ε²) Zᵀ Π_k Z)``.

    ``labels_or_memberships`` is integer labels (…, m) or soft memberships Π (…, m, K): finite, non-negative, rows
    summing to one (within ``srr.checks.MEMBERSHIP_ROW_TOLERANCE + K·u``). An empty class contributes 0. ``eps`` is
    ε (not ε²). Returns shape ``Z.shape[:-2]``.
    """
    return _rates(Z, labels_or_memberships, eps, num_classes, dtype, "compressed_rate")[1]


def rate_reduction(
    Z: Tensor,
    labels: Tensor,
    eps: float = 0.5,
    num_classes: int | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Rate reduction ``ΔR = R(Z, ε) − R^c(Z, ε | Π)`` (the MCR² objective, maximised).

    ``labels`` is integer labels (…, m) or soft memberships (…, m, K), checked as in :func:`compressed_rate`;
    ``eps`` is ε (not ε²). Returns shape ``Z.shape[:-2]``.
    """
    r, rc = _rates(Z, labels, eps, num_classes, dtype, "rate_reduction")
    return r - rc


def _rates(z: Tensor, lab, eps: float, num_classes: int | None, dtype, who: str) -> tuple[Tensor, Tensor]:
    z, eps = _prepare(z, eps, dtype, who)
    m, d = z.shape[-2], z.shape[-1]
    lab = as_tensor(lab, "labels")
    if lab.is_complex():
        raise ConfigError(f"labels or memberships are complex ({lab.dtype}); pass integer labels or real memberships")
    if lab.is_floating_point():
        if lab.shape[:-1] != z.shape[:-1]:
            raise ConfigError(f"memberships of shape {tuple(lab.shape)} do not match Z of shape {tuple(z.shape)}")
        k = lab.shape[-1]
        _check_class_memory(z, k, False, who, "the columns of the memberships")  # before the passes over Π
        check_memberships(lab, num_classes=num_classes)
        inputs = {"Z": z, "memberships": lab}
    else:
        if lab.shape != z.shape[:-1]:
            raise ConfigError(f"labels of shape {tuple(lab.shape)} do not match Z of shape {tuple(z.shape)}")
        flat, k = check_labels(lab.reshape(-1), num_classes, error=ConfigError)
        lab = flat.view(lab.shape)
        inputs = {"Z": z}
        source = f"num_classes={num_classes}" if num_classes is not None else "the largest label + 1"
        _check_class_memory(z, k, z.dim() == 2 and d <= m, who, source)
    fast = not lab.is_floating_point() and z.dim() == 2 and d <= m
    lab = lab.to(z.device)
    if m == 0:
        zero = z.new_zeros(z.shape[:-2])
        return zero, zero
    return guard_finite(lambda: _rate_pair(z, lab, k, eps, fast), **inputs)


def _check_class_memory(z: Tensor, k: int, fast: bool, who: str, source: str) -> None:
    """Refuse, before allocating, class computations that do not fit: the sorted path holds a sorted copy of Z and
    K + 1 Gram matrices with their factors (plus a small object per class); the general path a membership matrix,
    the K weighted copies of Z and K Gram matrices with their factors."""
    m, d, e = z.shape[-2], z.shape[-1], z.element_size()
    if fast:
        need = (m * d + 2 * (k + 1) * d * d) * e + 1024 * k
    else:
        need = math.prod(z.shape[:-2]) * k * (m + m * d + 2 * d * d) * e
    check_allocation(need, lambda: f"{who}: K = {k:,} classes ({source}) of {d} × {d} Gram matrices for "
                     f"m = {m:,} samples", z.device)


def _rate_pair(z: Tensor, lab: Tensor, k: int, eps: float, fast: bool) -> tuple[Tensor, Tensor]:
    """(R, R^c) for validated, non-empty input with K = ``k`` classes."""
    m, d = z.shape[-2], z.shape[-1]
    if fast:
        # Fast path: one pass of class Gram products; the total Gram is their sum (the floor: m·d² flops).
        grams, counts = _hard_class_grams(z, lab, k)
        counts = counts.to(z.dtype)
        scale = d / (torch.cat([counts, counts.new_tensor([m])]).clamp_min(1e-12) * eps**2)
        logdets = _logdet_i_plus(grams, scale)
        rc = 0.5 * (counts / m * logdets[:-1]).sum()
        return 0.5 * logdets[-1], rc
    pi = lab.to(z.dtype) if lab.is_floating_point() else _one_hot(lab, k, z.dtype)
    logdets, counts = _class_terms(z, pi, eps)
    rc = 0.5 * (counts / m * logdets).sum(-1)
    r = 0.5 * gram_logdet(z, d / (m * eps**2))
    return r, rc
