"""The rates a ReduNet ascends: ordinary for vectors, shift-invariant for signals and images (see docs/measures.md).

For features z of shape (C, *spatial) the shift-invariant coding rate counts every circular shift of every sample:

    R_circ(Z) = ½ logdet(I + (α/T) Σ_i circ(z_i) circ(z_i)ᵀ) = ½ Σ_t logdet(I_C + α Σ_i v_i(t) v_i(t)ᴴ),

α = C/(m ε²), T the number of spatial positions, v_i the orthonormal DFT of z_i (see
:mod:`srr.redunet.circulant`); ``R^c_circ = Σ_j (m_j/m) R_circ(Z_j)`` and ``ΔR_circ = R_circ − R^c_circ``. The
shift-invariant layers take gradient steps on exactly this ΔR_circ. Without spatial axes (vectors) these are the
ordinary rates of :func:`srr.coding_rate`, which is used for them. ``eps`` is ε, not ε².
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_eps, check_int
from ..errors import DataError
from ..measures import coding_rate
from ..measures.logdet import _logdet_i_plus, guard_finite
from .operators import check_labels

__all__ = ["rate", "redunet_rates"]


def rate(z: Tensor, eps: float, spatial_dims: int = 0) -> Tensor:
    """``R(Z)`` for vectors (``spatial_dims=0``, z of shape (m, …) flattened) or ``R_circ(Z)`` for signals
    (m, C, T) or images (m, C, H, W); float64."""
    spatial_dims = check_int(spatial_dims, "spatial_dims", low=0, high=2)
    eps = check_eps(eps)
    if not torch.is_tensor(z) or z.is_complex() or z.dim() < 1:
        raise DataError("features must be a real tensor with samples along the first axis")
    if spatial_dims == 0:
        return coding_rate(z.flatten(1), eps, dtype=torch.float64)
    if z.dim() != 2 + spatial_dims:
        raise DataError(f"expected features (m, C, {spatial_dims} spatial axes), got {tuple(z.shape)}")
    m, c = z.shape[:2]
    if m == 0:
        return torch.zeros((), dtype=torch.float64)
    v = torch.fft.fftn(z.to(torch.float64), dim=tuple(range(2, z.dim())), norm="ortho").reshape(m, c, -1)
    g = torch.einsum("mcf,mdf->fcd", v, v.conj())  # (F, C, C) Hermitian
    # A complex Hermitian G = A + iB acts on R^{2C} as [[A, −B], [B, A]], whose logdet(I + αG) is twice G's.
    real = torch.cat([torch.cat([g.real, -g.imag], -1), torch.cat([g.imag, g.real], -1)], -2)
    return 0.25 * guard_finite(lambda: _logdet_i_plus(real, c / (m * eps**2)), features=z).sum()


def redunet_rates(z: Tensor, labels: Tensor, eps: float, num_classes: int, spatial_dims: int = 0) -> dict:
    """``{"R", "Rc", "delta_R"}`` (floats) with true labels: ``R^c = Σ_j (m_j/m) R(Z_j)``, which is the
    class-wise rate for hard labels, taken class by class (each log-determinant on its smaller side)."""
    num_classes = check_int(num_classes, "num_classes", low=1)
    if not torch.is_tensor(z) or z.dim() < 1:
        raise DataError("features must be a tensor with samples along the first axis")
    labels = check_labels(labels, len(z), num_classes).to(z.device)
    r = float(rate(z, eps, spatial_dims))
    present = torch.unique(labels).tolist()  # absent classes contribute nothing: no loop over all K
    rc = sum(float((labels == j).sum()) / len(z) * float(rate(z[labels == j], eps, spatial_dims)) for j in present)
    return {"R": r, "Rc": rc, "delta_R": r - rc}
