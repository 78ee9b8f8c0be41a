"""Token-set compression against per-head subspaces, sparsity, and the sparse rate reduction (see docs/measures.md).

Tokens of one sample are rows of ``Z`` (…, N, d). A model with K heads of width p holds subspaces U_[K] as ``U`` of
shape (…, K, d, p); :func:`heads_from_qkv` turns a CRATE ``qkv.weight`` (K·p × d, rows of head k are U_kᵀ) into it.
``eps`` is ε, not ε² (see :mod:`srr.measures.rates`).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from ..checks import check_allocation, check_bool, check_choice, check_int, check_number
from ..errors import ConfigError
from .logdet import check_eps, check_finite, chunk_length, compute_dtype, gram_logdet, guard_finite, map_chunks
from .rates import coding_rate

__all__ = ["heads_from_qkv", "subspace_compression", "sparsity", "sparse_rate_reduction"]


def heads_from_qkv(weight: Tensor, heads: int) -> Tensor:
    """Per-head bases U (K, d, p) from a tied projection weight of shape (K·p, d) whose head-k rows are U_kᵀ."""
    if not torch.is_tensor(weight):
        raise ConfigError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    heads = check_int(heads, "heads", low=1)
    if weight.dim() != 2 or weight.shape[0] % heads:
        raise ConfigError(f"a projection of shape {tuple(weight.shape)} cannot be split into {heads} heads")
    kp, d = weight.shape
    return weight.reshape(heads, kp // heads, d).mT


def subspace_compression(
    Z: Tensor,
    U: Tensor,
    eps: float = 0.1,
    *,
    reduction: str = "sum",
    normalize: bool = False,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Compressed rate of token sets against subspaces: ``R^c(Z | U_[K]) = ½ Σ_k logdet(I_p + p/(N ε²) W_kᵀ W_k)``.

    ``Z`` is (…, N, d) (tokens in rows), ``U`` is (K, d, p) or batched (…, K, d, p); ``W_k = Z U_k``. The
    log-determinant is taken on the p × p side when p ≤ N, else on the N × N side (same value).
    ``normalize=True`` L2-normalises every token within each head first (the authors' layer-wise measurement).
    ``reduction="sum"`` sums the heads (shape ``Z.shape[:-2]``); ``"none"`` keeps them (…, K).
    ``eps`` is ε (not ε²): the authors' ε² = 0.01 is ``eps=0.1``.
    """
    eps = check_eps(eps)
    reduction = check_choice(reduction, "reduction", ("sum", "none"))
    normalize = check_bool(normalize, "normalize")
    for name, t in (("Z", Z), ("U", U)):
        if not torch.is_tensor(t):
            raise ConfigError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.is_complex():
            raise ConfigError(f"{name} is complex ({t.dtype}); subspace_compression takes real tensors")
    if Z.dim() < 2 or U.dim() < 3:
        raise ConfigError(f"Z must be (..., N, d) and U (..., K, d, p); got {tuple(Z.shape)} and {tuple(U.shape)}")
    if Z.shape[-1] != U.shape[-2]:
        raise ConfigError(f"token dimension {Z.shape[-1]} does not match subspace dimension {U.shape[-2]}")
    try:
        batch = torch.broadcast_shapes(Z.shape[:-2], U.shape[:-3])
    except RuntimeError:
        raise ConfigError(f"the batch dimensions of Z {tuple(Z.shape[:-2])} and of U {tuple(U.shape[:-3])} do not "
                          "broadcast (Z is (..., N, d), U (..., K, d, p))") from None
    ct = compute_dtype(Z, dtype)
    _check_projection_memory(Z, U, batch, ct)
    z, u = Z.to(ct), U.to(ct)
    n, p = z.shape[-2], u.shape[-1]
    if n == 0:
        per_head = z.new_zeros(_project(z, u).shape[:-2])
    else:
        per_head = guard_finite(lambda: _chunked_per_head(z, u, p / (n * eps**2), normalize), Z=Z, U=U)
    return per_head.sum(-1) if reduction == "sum" else per_head


def _check_projection_memory(z: Tensor, u: Tensor, batch: torch.Size, ct: torch.dtype) -> None:
    """Refuse, before allocating, projections W_k = Z U_k that do not fit: the concatenated bases (d × K·p) and,
    at once, W with its normalised copy or Gram matrices for the whole batch, or for one chunk per thread when the
    samples go through in chunks (see :func:`_chunked_per_head`)."""
    n, (k, d, p) = z.shape[-2], u.shape[-3:]
    e = torch.empty((), dtype=ct).element_size()
    per_item = k * n * p
    items = math.prod(batch)
    if z.dim() - 2 > u.dim() - 3 and z.shape[0] > 1 and z.device.type == "cpu":
        items = min(items, (items // z.shape[0]) * torch.get_num_threads())
    need = (math.prod(u.shape[:-3]) * k * d * p + 2 * items * per_item) * e
    check_allocation(need, lambda: f"subspace_compression: projections of N = {n:,} tokens onto K = {k:,} heads of "
                     f"p = {p:,} dimensions (K·p = {k * p:,}) for {math.prod(batch):,} sample(s)", z.device)


def _chunked_per_head(z: Tensor, u: Tensor, scale: float, normalize: bool) -> Tensor:
    """½ logdet per head, (…, K). When U is shared along Z's first dimension, the samples go through projection,
    normalisation and log-determinant a cache-sized chunk at a time (see :func:`~srr.measures.logdet.chunk_length`)."""
    if z.dim() - 2 > u.dim() - 3 and z.shape[0] > 1:
        k, p = u.shape[-3], u.shape[-1]
        # bytes of W_[K] for one sample; four cache budgets a chunk: the projection is more efficient in larger products
        item = z[0].numel() // z.shape[-1] * k * p * z.element_size()
        return map_chunks(lambda part: _per_head(part, u, scale, normalize), z, chunk_length(z, item // 4), u)
    return _per_head(z, u, scale, normalize)


def _per_head(z: Tensor, u: Tensor, scale: float, normalize: bool) -> Tensor:
    return 0.5 * gram_logdet(_project(z, u), scale, normalize=normalize)  # W_k = Z U_k: (…, K, N, p)


def _project(z: Tensor, u: Tensor) -> Tensor:
    """Per-head coordinates ``W_k = Z U_k``, shape (…, K, N, p), from Z (…, N, d) and U (…, K, d, p).

    When U has no more batch dimensions than Z has, the K heads are one product with the concatenated bases
    (d × K·p) instead of a broadcast batched product, which would copy Z once per head and U once per sample.
    """
    k, d, p = u.shape[-3:]
    ubatch, zbatch = u.shape[:-3], z.shape[:-2]
    if len(ubatch) <= len(zbatch) and torch.broadcast_shapes(ubatch, zbatch) == zbatch:
        ucat = u.movedim(-3, -2).reshape(*ubatch, d, k * p)  # columns of head k at k·p … (k+1)·p − 1
        w = torch.matmul(z, ucat) if not ubatch else torch.einsum("...nd,...de->...ne", z, ucat)
        return w.unflatten(-1, (k, p)).movedim(-2, -3)
    return z.unsqueeze(-3) @ u


def sparsity(Z: Tensor, threshold: float = 0.0) -> Tensor:
    """Fraction of entries with ``|z| > threshold`` over the last two dimensions: ``‖Z‖₀ / (N·d)``.

    The authors plot this per layer on ISTA outputs (non-negative). ``threshold`` is a finite number ≥ 0.
    Returns shape ``Z.shape[:-2]``; refuses Z without entries (N·d = 0), whose fraction is undefined.
    """
    threshold = check_number(threshold, "threshold", low=0.0)
    check_finite(Z, "Z")
    if Z.dim() < 2:
        raise ConfigError(f"Z must have shape (..., N, d), got {tuple(Z.shape)}")
    if Z.shape[-2] * Z.shape[-1] == 0:
        raise ConfigError(f"Z of shape {tuple(Z.shape)} has no entries (N·d = 0): its sparsity is undefined")
    if Z.dtype == torch.bool:
        Z = Z.to(torch.uint8)
    return (Z.abs() > threshold).to(torch.float32).mean(dim=(-2, -1))


def sparse_rate_reduction(
    Z: Tensor,
    U: Tensor,
    eps: float = 0.1,
    lam: float = 0.1,
    *,
    norm: str = "l0",
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Sparse rate reduction of token sets: ``R(Z) − R^c(Z | U_[K]) − λ‖Z‖`` per sample (maximised).

    ``Z`` (…, N, d) tokens in rows, ``U`` (…, K, d, p). ``R(Z) = ½ logdet(I + d/(N ε²) ZᵀZ)``.
    ``norm="l0"`` counts non-zero entries of the sample (no gradient); ``"l1"`` is the working surrogate ``Σ|z|``.
    ``lam`` (λ) is a finite number ≥ 0. ``eps`` is ε (not ε²). The layer measure of the sparse-rate-reduction study,
    μ_SRR, is the negative of this.
    """
    lam = check_number(lam, "lam", low=0.0)
    norm = check_choice(norm, "norm", ("l0", "l1"))
    with warnings.catch_warnings(record=True) as caught:  # a precision warning of one part is shown only if the
        warnings.simplefilter("always")  # other part does not fail: no warning precedes an error
        rc = subspace_compression(Z, U, eps, dtype=dtype)  # checks Z and U (shapes, batch dimensions) first
        r = coding_rate(Z, eps, dtype=dtype)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    zz = Z.to(r.dtype)
    penalty = (zz != 0).to(r.dtype).sum((-2, -1)) if norm == "l0" else zz.abs().sum((-2, -1))
    return r - rc - lam * penalty
