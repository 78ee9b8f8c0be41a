"""Numerically safe log-determinants of ``I + a·G`` for positive semi-definite Gram matrices.

Every coding rate in srr reduces to ``logdet(I + a·G)`` with ``G`` a Gram matrix and ``a > 0``. Since
``I + a·G`` has all eigenvalues ≥ 1 it is always well conditioned, so a Cholesky factorisation succeeds except when
``G`` carries round-off negative eigenvalues or overflow; then the computation falls back to ``eigvalsh`` of ``G`` with
its eigenvalues clamped at zero. ``torch.logdet`` (an LU factorisation) is never used: it returns NaN on nearly
singular float32 input.

Cost: the inputs are not scanned for NaN/inf up front. A non-finite entry of Z reaches the diagonal of its Gram
matrix (as NaN or inf), where the Cholesky flags (NaN pivot) or the result (log of an infinite pivot) expose it;
one test of flags and result per call replaces the input scans, and :func:`guard_finite` then names the offending
input. The guarantee is unchanged: a rate is finite or an error is raised, never NaN.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch import Tensor

from ..errors import ConfigError, NonFiniteError

__all__ = ["check_finite", "check_eps", "compute_dtype", "gram", "logdet_i_plus", "gram_logdet", "guard_finite"]


def check_finite(x: Tensor, name: str = "input") -> None:
    """Raise :class:`~srr.errors.NonFiniteError` (a ``ValueError``) if ``x`` holds NaN or ±inf."""
    if not torch.is_tensor(x):
        raise ConfigError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex():
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise NonFiniteError(f"{name} contains {bad} non-finite value(s) (NaN or inf); rates are undefined")


def check_eps(eps: float) -> float:
    """Validate the distortion ε (not ε²): a finite positive number."""
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ConfigError(f"eps must be a positive number, got {eps!r}") from None
    if not (eps > 0.0 and eps < float("inf")):
        raise ConfigError(f"eps must be a finite positive number (it is ε, not ε²), got {eps}")
    return eps


def compute_dtype(x: Tensor, dtype: torch.dtype | None) -> torch.dtype:
    """The dtype the rate is computed in: ``dtype`` if given, else float32 for half inputs, else the input's."""
    if dtype is not None:
        if not dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating dtype, got {dtype}")
        return dtype
    if x.dtype in (torch.float16, torch.bfloat16) or not x.is_floating_point():
        return torch.float32
    return x.dtype


def gram(z: Tensor) -> tuple[Tensor, bool]:
    """Gram matrix of ``z`` (…, m, d) on its smaller side: ``zᵀz`` (d × d) if d ≤ m, else ``z zᵀ`` (m × m).

    Returns the matrix and whether it is the sample side (m × m). Both sides have the same non-zero eigenvalues, so
    ``logdet(I + a·zᵀz) = logdet(I + a·z zᵀ)``.
    """
    m, d = z.shape[-2], z.shape[-1]
    if d <= m:
        return z.mT @ z, False
    return z @ z.mT, True


def logdet_i_plus(g: Tensor, scale: Tensor | float) -> Tensor:
    """``logdet(I + scale·g)`` for symmetric positive semi-definite ``g`` (…, n, n), batched and differentiable.

    ``scale`` is a positive number or a tensor broadcastable to the batch shape ``g.shape[:-2]``.
    Cholesky first; if it fails for any batch member, the batch is recomputed from the eigenvalues clamped so that
    those of ``g`` are ≥ 0. Raises :class:`~srr.errors.NonFiniteError` if ``g`` or the result is not finite.
    """
    n = g.shape[-1]
    if n == 0:
        return g.new_zeros(g.shape[:-2])
    if torch.is_tensor(scale):
        scale = scale.to(g.dtype)[..., None, None]
    a = g * scale
    a.diagonal(dim1=-2, dim2=-1).add_(1.0)
    _warn_if_imprecise(g, scale[..., 0, 0].detach() if torch.is_tensor(scale) else scale)
    return _cholesky_logdet(a)


def gram_logdet(z: Tensor, scale: float) -> Tensor:
    """``logdet(I + scale·zᵀz)`` of each (m × d) matrix of ``z`` (…, m, d), on the smaller Gram side.

    The same value as ``logdet_i_plus(gram(z)[0], scale)``, with ``I + scale·G`` formed by one batched
    ``baddbmm`` (scale and identity fused into the product) instead of three passes.
    """
    m, d = z.shape[-2], z.shape[-1]
    n = min(m, d)
    batch = z.shape[:-2]
    if n == 0:
        return z.new_zeros(batch)
    flat = z.reshape(-1, m, d)
    left, right = (flat.mT, flat) if d <= m else (flat, flat.mT)
    eye = torch.eye(n, dtype=z.dtype, device=z.device).expand(flat.shape[0], n, n)
    a = torch.baddbmm(eye, left, right, alpha=scale)
    _warn_if_imprecise(a, 1.0, shift=n)
    return _cholesky_logdet(a).reshape(batch)


def _cholesky_logdet(a: Tensor) -> Tensor:
    """``logdet(a)`` for ``a = I + s·G`` with G ⪰ 0: ``2 Σ log diag(chol a)``; falls back to ``Σ log max(λ(a), 1)``
    when the factorisation fails (round-off made G indefinite); raises if ``a`` or the result is not finite.

    One host synchronisation in the common case: a single test of the factorisation flags and the result together.
    """
    # a is symmetric: the upper factor of aᵀ reads the same triangle and skips a transposing copy.
    chol, info = torch.linalg.cholesky_ex(a.mT, upper=True)
    out = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    if not bool(((info == 0) & torch.isfinite(out)).all()):
        if not bool(torch.isfinite(a).all()):
            raise NonFiniteError(
                "the Gram matrix holds NaN or inf (non-finite input, or overflow: pass dtype=torch.float64 or rescale)"
            )
        # Recompute the whole batch from the eigenvalues, so no NaN from a failed factor reaches the backward pass.
        evals = torch.linalg.eigvalsh(0.5 * (a + a.mT)).clamp_min(1.0)
        out = torch.log(evals).sum(-1)
        if not bool(torch.isfinite(out).all()):
            raise NonFiniteError("log-determinant overflowed; pass dtype=torch.float64 or rescale the input")
    return out


def guard_finite(compute: Callable[[], Tensor], **inputs: Tensor) -> Tensor:
    """Run ``compute()``; if it raises :class:`NonFiniteError`, name the non-finite input instead when there is one.

    The rates check their inputs this way rather than scanning every input up front: a NaN or inf anywhere in the
    input reaches the diagonal of a Gram matrix, so the factorisation's own checks catch it at no extra pass.
    """
    try:
        return compute()
    except NonFiniteError:
        for name, t in inputs.items():
            check_finite(t, name)
        raise


def _warn_if_imprecise(g: Tensor, scale, shift: float = 0.0) -> None:
    """Warn when round-off in ``g`` (about ε_mach·tr G), magnified by ``scale``, exceeds 1: the result may then be off
    by about that much (the small eigenvalues of ``G`` are not resolved). In float32 and below,
    ``dtype=torch.float64`` gives a meaningful value; in float64 the data's scale is too large for ε
    (``scale·tr G = d‖Z‖²_F/(m ε²)`` does not change when Z and ε are rescaled together). ``shift`` is subtracted
    from the trace (``n`` when ``g`` already holds ``I + scale·G``); a non-finite trace is left to the caller, which
    raises."""
    trace = torch.diagonal(g.detach(), dim1=-2, dim2=-1).sum(-1) - shift
    noise = torch.finfo(g.dtype).eps * trace.abs() * scale
    noise = noise[torch.isfinite(noise)]
    if bool((noise > 1.0).any()):
        advice = ("ε is too small for the data's scale to be resolved even in float64; expect an error of that order"
                  if g.dtype == torch.float64 else "pass dtype=torch.float64 for an accurate value")
        warnings.warn(
            f"{g.dtype} round-off dominates this log-determinant (scale·ε_mach·tr G = {float(noise.max()):.3g} > 1); "
            + advice,
            RuntimeWarning,
            stacklevel=3,
        )
