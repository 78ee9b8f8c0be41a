"""Coding rates of feature sets: R, the class-wise R^c and the rate reduction ΔR = R − R^c (REFERENCE §1).

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

import torch
from torch import Tensor

from ..errors import ConfigError
from .logdet import check_eps, compute_dtype, gram_logdet, guard_finite, logdet_i_plus

__all__ = ["coding_rate", "compressed_rate", "rate_reduction", "memberships"]


def _prepare(z: Tensor, eps: float, dtype: torch.dtype | None) -> tuple[Tensor, float]:
    if not torch.is_tensor(z):
        raise ConfigError(f"Z must be a torch.Tensor, got {type(z).__name__}")
    if z.dim() < 2:
        raise ConfigError(f"Z must have shape (..., m, d) with samples in rows, got shape {tuple(z.shape)}")
    return z.to(compute_dtype(z, dtype)), check_eps(eps)


def coding_rate(
    Z: Tensor, eps: float = 0.5, *, normalize: bool = False, dtype: torch.dtype | None = None
) -> Tensor:
    """Coding rate ``R(Z, ε) = ½ logdet(I_d + d/(m ε²) ZᵀZ)`` of each (m × d) matrix in ``Z`` (…, m, d).

    ``eps`` is ε (not ε²); for code that passes ε², use ``eps=sqrt(that)``. Computed on the smaller Gram side.
    ``normalize=True`` takes the rate of the rows L2-normalised (the same value as
    ``coding_rate(F.normalize(Z, dim=-1))``, without a normalised copy of the whole batch).
    Returns a tensor of shape ``Z.shape[:-2]``.
    """
    z, eps = _prepare(Z, eps, dtype)
    m, d = z.shape[-2], z.shape[-1]
    if m == 0:
        return z.new_zeros(z.shape[:-2])
    return 0.5 * guard_finite(lambda: gram_logdet(z, d / (m * eps**2), normalize=normalize), Z=Z)


def _num_classes(labels: Tensor, num_classes: int | None) -> int:
    """Check integer labels against ``num_classes`` and return the class count K."""
    if labels.is_floating_point():
        raise ConfigError("labels must be integers; pass soft memberships as a (..., m, K) float tensor")
    if labels.numel() and int(labels.min()) < 0:
        raise ConfigError(f"labels must be non-negative, got minimum {int(labels.min())}")
    top = int(labels.max()) + 1 if labels.numel() else 0
    k = top if num_classes is None else int(num_classes)
    if top > k:
        raise ConfigError(f"label {top - 1} is out of range for num_classes={k}")
    return k


def memberships(labels: Tensor, num_classes: int | None = None, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot membership matrix Π (…, m, K) from integer labels (…, m); checks the range."""
    k = _num_classes(labels, num_classes)
    return torch.nn.functional.one_hot(labels.long(), k).to(dtype)


def _class_terms(z: Tensor, pi: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Per-class ``logdet(I + d/(tr Π_k ε²) Zᵀ Π_k Z)`` and tr Π_k for soft or one-hot Π (…, m, K)."""
    d = z.shape[-1]
    counts = pi.sum(-2)  # (…, K)
    zw = z.unsqueeze(-3) * pi.mT.unsqueeze(-1)  # (…, K, m, d): rows weighted by Π_k
    grams = zw.mT @ z.unsqueeze(-3)  # (…, K, d, d)
    scale = d / (counts.clamp_min(1e-12) * eps**2)
    return logdet_i_plus(grams, scale), counts


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

    ``labels_or_memberships`` is integer labels (…, m) or soft memberships Π (…, m, K) with rows summing to one.
    An empty class contributes 0. ``eps`` is ε (not ε²). Returns shape ``Z.shape[:-2]``.
    """
    return _rates(Z, labels_or_memberships, eps, num_classes, dtype)[1]


def rate_reduction(
    Z: Tensor,
    labels: Tensor,
    eps: float = 0.5,
    num_classes: int | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Rate reduction ``ΔR = R(Z, ε) − R^c(Z, ε | Π)`` (the MCR² objective, maximised).

    ``labels`` is integer labels (…, m) or soft memberships (…, m, K); ``eps`` is ε (not ε²).
    Returns shape ``Z.shape[:-2]``.
    """
    r, rc = _rates(Z, labels, eps, num_classes, dtype)
    return r - rc


def _rates(z: Tensor, lab: Tensor, eps: float, num_classes: int | None, dtype) -> tuple[Tensor, Tensor]:
    z, eps = _prepare(z, eps, dtype)
    m, d = z.shape[-2], z.shape[-1]
    if not torch.is_tensor(lab):
        lab = torch.as_tensor(lab)
    lab = lab.to(z.device)
    if lab.is_floating_point():
        if lab.shape[:-1] != z.shape[:-1]:
            raise ConfigError(f"memberships of shape {tuple(lab.shape)} do not match Z of shape {tuple(z.shape)}")
        if num_classes is not None and lab.shape[-1] != num_classes:
            raise ConfigError(f"memberships have {lab.shape[-1]} columns but num_classes={num_classes}")
        if bool((lab < 0).any()):
            raise ConfigError("memberships must be non-negative")
        inputs = {"Z": z, "memberships": lab}
    else:
        inputs = {"Z": z}
    if not lab.is_floating_point() and lab.shape != z.shape[:-1]:
        raise ConfigError(f"labels of shape {tuple(lab.shape)} do not match Z of shape {tuple(z.shape)}")
    if m == 0:
        zero = z.new_zeros(z.shape[:-2])
        return zero, zero
    return guard_finite(lambda: _rate_pair(z, lab, eps, num_classes), **inputs)


def _rate_pair(z: Tensor, lab: Tensor, eps: float, num_classes: int | None) -> tuple[Tensor, Tensor]:
    """(R, R^c) for validated, non-empty input."""
    m, d = z.shape[-2], z.shape[-1]
    if not lab.is_floating_point() and z.dim() == 2 and d <= m:
        # Fast path: one pass of class Gram products; the total Gram is their sum (the floor: m·d² flops).
        k = _num_classes(lab, num_classes)
        grams, counts = _hard_class_grams(z, lab.long(), k)
        counts = counts.to(z.dtype)
        scale = d / (torch.cat([counts, counts.new_tensor([m])]).clamp_min(1e-12) * eps**2)
        logdets = logdet_i_plus(grams, scale)
        rc = 0.5 * (counts / m * logdets[:-1]).sum()
        return 0.5 * logdets[-1], rc
    pi = lab.to(z.dtype) if lab.is_floating_point() else memberships(lab, num_classes, dtype=z.dtype)
    logdets, counts = _class_terms(z, pi, eps)
    rc = 0.5 * (counts / m * logdets).sum(-1)
    r = 0.5 * gram_logdet(z, d / (m * eps**2))
    return r, rc
