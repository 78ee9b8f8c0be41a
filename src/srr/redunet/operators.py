"""The expansion and compression operators of a ReduNet layer (see docs/models.md).

For a set of feature vectors with Gram matrix ``G = Σ_i z_i z_iᴴ`` (real or complex Hermitian, n × n) and a scale
``α > 0``, both operators have the form ``α (I + α G)⁻¹``:

* expansion ``E = α (I + α ZᵀZ)⁻¹`` with ``α = d/(m ε²)`` over all m samples,
* compression ``C_j = α_j (I + α_j Z_jᵀ Z_j)⁻¹`` with ``α_j = d/(m_j ε²)`` over the m_j samples of class j,
* weights ``γ_j = m_j / m``.

They are the gradients of the coding rates: ``∂R/∂z_i = E z_i`` and ``∂R^c/∂z_i = Σ_j γ_j π_ij C_j z_i``, so a
ReduNet layer ``z + η (E z − Σ_j γ_j π̂_j C_j z)`` is one step of gradient ascent on ΔR = R − R^c.
``eps`` is ε, not ε²: the official ReduNet code passes ε² under the name ``eps`` (its default 0.1 is ε² = 0.1, i.e.
``eps=sqrt(0.1)`` here).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks
from ..errors import ConfigError, NonFiniteError

__all__ = ["regularized_inverse", "class_operators", "class_grams", "check_labels"]


def regularized_inverse(gram: Tensor, alpha: Tensor | float) -> Tensor:
    """``α (I + α G)⁻¹`` for Hermitian positive semi-definite ``gram`` (…, n, n), batched, real or complex.

    ``alpha`` is a positive number or a tensor of the batch shape ``gram.shape[:-2]``. ``I + αG`` has every
    eigenvalue ≥ 1, so the Cholesky factorisation succeeds; its inverse is formed from the factor.
    """
    if not torch.is_tensor(gram) or gram.dim() < 2 or gram.shape[-1] != gram.shape[-2]:
        raise ConfigError("gram must be a tensor of square matrices (..., n, n)")
    if not torch.is_tensor(alpha):
        alpha = checks.check_number(alpha, "alpha", low=0.0, low_open=True)
    elif alpha.is_complex() or not bool((torch.isfinite(alpha) & (alpha > 0)).all()):
        raise ConfigError("alpha must be finite and positive")
    n = gram.shape[-1]
    if torch.is_tensor(alpha):
        alpha = alpha.to(gram.real.dtype if gram.is_complex() else gram.dtype)[..., None, None]
    eye = torch.eye(n, dtype=gram.dtype, device=gram.device)
    a = eye + alpha * gram
    a = 0.5 * (a + a.mH)  # exact Hermitian symmetry, so round-off cannot break the factorisation
    chol, info = torch.linalg.cholesky_ex(a)
    if bool((info != 0).any()):
        inv = torch.linalg.inv(a)
    else:
        inv = torch.cholesky_inverse(chol)
    out = alpha * inv
    if not bool(torch.isfinite(torch.view_as_real(out) if out.is_complex() else out).all()):
        raise NonFiniteError("the ReduNet operator α(I + αG)⁻¹ is not finite; check the features and eps")
    return out


def check_labels(labels: Tensor, m: int, num_classes: int) -> Tensor:
    """Integer labels of length ``m`` in ``[0, num_classes)``, as int64 (:func:`srr.checks.check_labels`)."""
    labels = checks.as_tensor(labels, "labels")
    if labels.is_floating_point() or labels.is_complex():
        raise ConfigError(f"ReduNet construction needs integer class labels, found {labels.dtype}")
    return checks.check_labels(labels.reshape(-1), num_classes, count=m, error=ConfigError)[0]


def class_operators(grams: Tensor, counts: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """Compression operators ``C_j = α_j (I + α_j G_j)⁻¹`` with ``α_j = scale / m_j`` for class Gram matrices
    ``grams`` (K, …, n, n) and class sizes ``counts`` (K,); an empty class gets ``C_j = 0``.

    Returns ``(C (K, …, n, n), present (K,) bool)``.
    """
    present = counts > 0
    alpha = scale / counts.clamp_min(1).to(torch.float64)
    alpha = alpha.view(-1, *([1] * (grams.dim() - 3)))
    alpha = alpha.expand(grams.shape[:-2])
    cs = regularized_inverse(grams, alpha)
    cs = cs * present.view(-1, *([1] * (grams.dim() - 1))).to(cs.real.dtype if cs.is_complex() else cs.dtype)
    return cs, present


def class_grams(v: Tensor, labels: Tensor, k: int) -> Tensor:
    """Per class and frequency ``Σ_{i in class j} v_i(t) v_i(t)ᴴ``: (K, F, C, C) from v (m, C, F)."""
    out = v.new_zeros(k, v.shape[2], v.shape[1], v.shape[1])
    for j in range(k):
        vj = v[labels == j]
        if len(vj):
            out[j] = torch.einsum("mcf,mdf->fcd", vj, vj.conj())
    return out
