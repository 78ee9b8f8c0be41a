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

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import torch
from torch import Tensor

from ..checks import check_dtype, check_eps, check_finite, check_number
from ..errors import ConfigError, NonFiniteError

__all__ = ["check_finite", "check_eps", "compute_dtype", "gram", "logdet_i_plus", "gram_logdet", "guard_finite"]

#: Working-set size of one chunk of small matrices on the CPU (see :func:`chunk_length`): about a core's L2 cache.
CHUNK_BYTES = 1 << 20


def compute_dtype(x: Tensor, dtype: torch.dtype | None) -> torch.dtype:
    """The dtype the rate is computed in: ``dtype`` if given, else the input's; half precision (float16, bfloat16,
    given or implied) and integer input compute in float32, since no factorisation exists in half precision."""
    if dtype is not None:
        check_dtype(dtype)
    else:
        dtype = x.dtype if x.is_floating_point() else torch.float32
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


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

    ``scale`` is a finite number ≥ 0 or a tensor of such numbers broadcastable to the batch shape ``g.shape[:-2]``.
    ``g`` must be symmetric positive semi-definite up to round-off: it is refused (:class:`~srr.errors.ConfigError`)
    when ``|g − gᵀ|`` or the most negative eigenvalue exceeds ``32·n·u·tr|g|`` (u the unit round-off of its dtype),
    which costs one more Cholesky factorisation. Half-precision and integer ``g`` compute in float32. Cholesky
    first; if it fails for any batch member, the batch is recomputed from the eigenvalues clamped so that those of
    ``g`` are ≥ 0. Raises :class:`~srr.errors.NonFiniteError` if ``g`` or the result is not finite.
    """
    if not torch.is_tensor(g):
        raise ConfigError(f"G must be a torch.Tensor, got {type(g).__name__}")
    if g.is_complex():
        raise ConfigError(f"G is complex ({g.dtype}); logdet_i_plus takes real symmetric matrices")
    if g.dim() < 2 or g.shape[-1] != g.shape[-2]:
        raise ConfigError(f"G must be square matrices (..., n, n), got shape {tuple(g.shape)}")
    g = g.to(compute_dtype(g, None))
    scale = _check_scale(scale, g.shape[:-2])
    _check_psd(g)
    return _logdet_i_plus(g, scale)


def _check_scale(scale, batch: torch.Size):
    """A scale ≥ 0 and finite: a number, or a real tensor broadcastable to ``batch``."""
    if not torch.is_tensor(scale):
        return check_number(scale, "scale", low=0.0)
    if scale.is_complex() or scale.dtype == torch.bool:
        raise ConfigError(f"scale must be real, got {scale.dtype}")
    try:
        fits = torch.broadcast_shapes(scale.shape, batch) == batch
    except RuntimeError:
        fits = False
    if not fits:
        raise ConfigError(f"scale of shape {tuple(scale.shape)} does not broadcast to the batch shape {tuple(batch)}")
    s = scale.detach()
    if s.numel() and not bool((torch.isfinite(s) & (s >= 0)).all()):
        raise ConfigError(f"scale must be finite and >= 0, found {float(s[~(torch.isfinite(s) & (s >= 0))][0]):g}")
    return scale


def _check_psd(g: Tensor) -> None:
    """Refuse a ``g`` that is not symmetric positive semi-definite beyond round-off (see :func:`logdet_i_plus`)."""
    n = g.shape[-1]
    if n == 0 or g.numel() == 0:
        return
    gd = g.detach()
    size = gd.diagonal(dim1=-2, dim2=-1).abs().sum(-1)
    asym = (gd - gd.mT).abs().amax(dim=(-2, -1))
    if not bool(torch.isfinite(size).all() & torch.isfinite(asym).all()):
        check_finite(g, "G")
        raise NonFiniteError("G overflows (its entries are too large for its dtype); pass float64 or rescale")
    tol = 32 * n * torch.finfo(g.dtype).eps * size + torch.finfo(g.dtype).tiny
    if not bool((asym <= tol).all()):
        raise ConfigError(f"G is not symmetric: |G - Gᵀ| reaches {float(asym.max()):.3g}, beyond round-off")
    shifted = gd + tol[..., None, None] * torch.eye(n, dtype=g.dtype, device=g.device)
    if not bool((torch.linalg.cholesky_ex(shifted)[1] == 0).all()):
        raise ConfigError("G is not positive semi-definite: it has an eigenvalue below -32·n·u·tr|G| (beyond "
                          "round-off); logdet_i_plus takes Gram matrices")


def _logdet_i_plus(g: Tensor, scale: Tensor | float) -> Tensor:
    """:func:`logdet_i_plus` without the checks of its arguments, for Gram matrices formed inside srr (positive
    semi-definite by construction) and scales already checked."""
    n = g.shape[-1]
    if n == 0:
        return g.new_zeros(g.shape[:-2])
    if torch.is_tensor(scale):
        scale = scale.to(g.dtype)[..., None, None]
    a = g * scale
    a.diagonal(dim1=-2, dim2=-1).add_(1.0)
    out = _cholesky_logdet(a)
    _warn_if_imprecise(g, scale[..., 0, 0].detach() if torch.is_tensor(scale) else scale)
    return out


def gram_logdet(z: Tensor, scale: float, *, normalize: bool = False) -> Tensor:
    """``logdet(I + scale·zᵀz)`` of each (m × d) matrix of ``z`` (…, m, d), on the smaller Gram side.

    The same value as ``logdet_i_plus(gram(z)[0], scale)``, with ``I + scale·G`` formed by one batched
    ``baddbmm`` (scale and identity fused into the product) instead of three passes. ``normalize=True``
    L2-normalises the rows of ``z`` first (chunk by chunk, see :func:`chunk_length`).
    """
    m, d = z.shape[-2], z.shape[-1]
    n = min(m, d)
    batch = z.shape[:-2]
    if n == 0:
        return z.new_zeros(batch)
    flat = z.reshape(-1, m, d)
    step = chunk_length(flat, max(m * d, n * n) * flat.element_size())
    return map_chunks(lambda part: _flat_gram_logdet(part, scale, normalize), flat, step).reshape(batch)


def _flat_gram_logdet(flat: Tensor, scale: float, normalize: bool = False) -> Tensor:
    if normalize:
        flat = torch.nn.functional.normalize(flat, dim=-1)
    m, d = flat.shape[-2], flat.shape[-1]
    n = min(m, d)
    left, right = (flat.mT, flat) if d <= m else (flat, flat.mT)
    eye = torch.eye(n, dtype=flat.dtype, device=flat.device).expand(flat.shape[0], n, n)
    a = torch.baddbmm(eye, left, right, alpha=scale)
    out = _cholesky_logdet(a)
    _warn_if_imprecise(a, 1.0, shift=n)  # after the factorisation: no warning precedes an error
    return out


def chunk_length(x: Tensor, bytes_per_item: int) -> int:
    """How many items of the leading dimension of ``x`` to process at a time on the CPU: enough to fill
    :data:`CHUNK_BYTES`, at least one. Many small matrices are memory-bound on the CPU: every full pass over the
    batch (Gram, Cholesky's column-major copy and its triangle zeroing) goes to main memory, while a chunk whose
    matrices fit in a core's cache makes the same passes in cache (``benchmarks/measures.py``: 1.5× faster for the
    token sets of 64 CRATE-Tiny images on one thread). Other devices take the whole batch at once."""
    if x.device.type != "cpu":
        return max(1, x.shape[0])
    return max(1, CHUNK_BYTES // max(1, bytes_per_item))


def map_chunks(fn: Callable[[Tensor], Tensor], x: Tensor, step: int, *others: Tensor) -> Tensor:
    """``fn`` applied to ``x`` in chunks of ``step`` along dimension 0, results concatenated along dimension 0;
    ``others`` are the further tensors that ``fn`` reads (checked like ``x`` before running in threads).

    Batched small factorisations do not run in parallel on the CPU (one LAPACK call after another), so when torch
    has several threads and nothing needs the autograd graph or sees the operations (no gradient, no ``torch.func``
    transform, no dispatch or function mode), the chunks are split into contiguous runs that run at once, one run
    per thread (torch releases the GIL in its operations). Otherwise they run in order in this thread.
    """
    if step >= x.shape[0]:
        return fn(x)
    parts = x.split(step)
    workers = min(torch.get_num_threads(), len(parts))
    if workers < 2 or not all(_may_run_in_threads(t) for t in (x, *others)):
        return torch.cat([fn(p) for p in parts])
    runs = [parts[i * len(parts) // workers:(i + 1) * len(parts) // workers] for i in range(workers)]

    def run(chunks: tuple[Tensor, ...]) -> Tensor:
        _IN_RUN.active = True  # a nested map_chunks runs in order: no worker waits on the pool it occupies
        try:
            with torch.no_grad():
                return torch.cat([fn(p) for p in chunks])
        finally:
            _IN_RUN.active = False

    futures = [_pool(workers).submit(run, r) for r in runs[1:]]
    first = run(runs[0])  # this thread takes the first run
    return torch.cat([first] + [f.result() for f in futures])


def _may_run_in_threads(x: Tensor) -> bool:
    return (
        not getattr(_IN_RUN, "active", False)
        and x.device.type == "cpu"
        and type(x) is Tensor
        and not (torch.is_grad_enabled() and x.requires_grad)
        and not torch._C._functorch.is_functorch_wrapped_tensor(x)
        and torch._C._len_torch_function_stack() == 0
        and torch._C._len_torch_dispatch_stack() == 0
    )


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (process id, workers, pool)
_IN_RUN = threading.local()


def _pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of worker threads for :func:`map_chunks`, grown when torch's thread count grows and made
    anew in a forked child (a child inherits the pool but not its threads)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] < workers - 1:
        _POOL = (os.getpid(), workers - 1, ThreadPoolExecutor(max_workers=workers - 1, thread_name_prefix="srr-chunks"))
    return _POOL[2]


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
