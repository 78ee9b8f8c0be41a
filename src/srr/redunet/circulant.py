"""The signal-domain (block-circulant) form of the shift-invariant ReduNet operators, for checking the FFT form.

For multichannel signals z_i (C × T), let ``circ(z_i)`` be the CT × T matrix whose column s is ``vec(roll(z_i, s))``
(channel-major: entry ``c·T + t``). The shift-invariant expansion operator in the signal domain is

    Ē = α (I_{CT} + (α/T) Σ_i circ(z_i) circ(z_i)ᵀ)⁻¹,   α = C/(m ε²),

a C × C array of T × T circulant blocks. The orthonormal DFT block-diagonalises it: at frequency t it is
``E_t = α (I + α Σ_i v_i(t) v_i(t)ᴴ)⁻¹`` with ``v_i = FFT(z_i)``, because the circulant Gram block
``Σ_s roll(z_ik, s) roll(z_il, s)ᵀ`` has eigenvalues ``T · v_ik(t) v_il(t)*``. Forming Ē costs one CT × CT inversion;
the FFT form costs T inversions of C × C. ``eps`` is ε, not ε².
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_allocation, check_eps
from ..errors import DataError
from .operators import regularized_inverse

__all__ = ["circulant_matrix", "block_circulant_operator"]


def circulant_matrix(z: Tensor) -> Tensor:
    """``circ(z)`` (C·T × T) of one signal z (C × T): column s is ``vec(roll(z, s, dim=-1))``."""
    if not torch.is_tensor(z) or z.dim() != 2:
        raise DataError(f"circulant_matrix expects one signal (C, T), got {tuple(getattr(z, 'shape', ()))}")
    t = z.shape[-1]
    check_allocation(2 * z.numel() * t * z.element_size(), f"circulant_matrix of a signal {tuple(z.shape)}", z.device)
    return torch.stack([torch.roll(z, s, dims=-1).reshape(-1) for s in range(t)], dim=1)


def block_circulant_operator(z: Tensor, eps: float) -> Tensor:
    """``α (I + (α/T) Σ_i circ(z_i) circ(z_i)ᵀ)⁻¹`` (CT × CT) with ``α = C/(m ε²)`` for signals z (m, C, T).

    Applied to the features of all samples it gives the expansion operator Ē; applied to the samples of class j
    (so m = m_j) the compression operator C̄_j.
    """
    if not torch.is_tensor(z) or z.dim() != 3 or z.shape[0] == 0:
        raise DataError("block_circulant_operator expects signals (m, C, T) with m ≥ 1, "
                        f"got {tuple(getattr(z, 'shape', ()))}")
    m, c, t = z.shape
    alpha = c / (m * check_eps(eps) ** 2)
    check_allocation((2 * m * t * c * t + 4 * (c * t) ** 2) * z.element_size(),
                     f"block_circulant_operator: {m} signals of {c} × {t} (a {c * t} × {c * t} operator)", z.device)
    shifts = torch.stack([torch.roll(z, s, dims=-1) for s in range(t)], dim=1).reshape(m * t, c * t)
    return t * regularized_inverse(shifts.mT @ shifts, alpha / t)
