"""The LASSO by ISTA and FISTA, its non-negative form, and CRATE's ISTA block as one step of it (docs/principles.md).

Rows are samples: signals X (n × d), a dictionary D (d × m), codes Z (n × m) with X ≈ Z Dᵀ. Per row,

    F(z) = ½‖x − D z‖² + λ‖z‖₁                       (the LASSO; F₊ adds the constraint z ≥ 0)
    ISTA:  z ← S_{ηλ}(z + η Dᵀ(x − D z))            S_θ(v) = sign(v)·max(|v| − θ, 0), step η ≤ 1/L, L = ‖D‖₂²
    non-negative ISTA:  z ← ReLU(z + η Dᵀ(x − D z) − ηλ)
    FISTA: the ISTA step taken at v = z_t + ((t_k − 1)/t_{k+1})(z_t − z_{t−1}),  t_{k+1} = (1 + √(1 + 4t_k²))/2

ISTA's error in F falls as O(1/t), FISTA's as O(1/t²). CRATE's ISTA block (:class:`srr.operators.ISTA`) is
``ReLU(x + η(x D − x Dᵀ D) − ηλ)`` on tokens in rows: exactly one non-negative ISTA step on the LASSO with the
block's dictionary D (d × d), started at the tokens themselves (z₀ = x), with the block's η and λ
(:func:`crate_block_as_step` checks it). scikit-learn's ``Lasso(alpha)`` minimises ``(1/(2d))‖x − D z‖² + α‖z‖₁``
for one signal of d values, i.e. this F with λ = d·α.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..checks import check_finite, check_int, check_memory, check_number
from ..errors import ConfigError, NonFiniteError
from ..models.lista import soft_threshold

__all__ = ["lasso_objective", "lipschitz", "ista", "fista", "nonnegative_ista", "crate_block_as_step",
           "soft_threshold"]


def _check(x: Tensor, D: Tensor, lambd: float) -> tuple[Tensor, Tensor, float]:
    check_finite(x, "x")
    check_finite(D, "D")
    if D.dim() != 2 or x.dim() != 2 or x.shape[1] != D.shape[0]:
        raise ConfigError(f"signals x (n, d) and a dictionary D (d, m) are needed, got {tuple(x.shape)} and "
                          f"{tuple(D.shape)}")
    lambd = check_number(lambd, "lambd", low=0.0, high=1e12)
    check_memory(8 * 6 * x.shape[0] * D.shape[1] + 8 * D.shape[1] ** 2, f"codes of {x.shape[0]} signals")
    return x, D, lambd


def lipschitz(D: Tensor) -> float:
    """L = ‖D‖₂² (the largest eigenvalue of DᵀD): the Lipschitz constant of the gradient of ½‖x − D z‖²."""
    check_finite(D, "D")
    if D.dim() != 2:
        raise ConfigError(f"a dictionary D (d, m) is needed, got shape {tuple(D.shape)}")
    return float(torch.linalg.matrix_norm(D.double(), ord=2)) ** 2


def lasso_objective(x: Tensor, D: Tensor, z: Tensor, lambd: float) -> Tensor:
    """F(z) = ½‖x − D z‖² + λ‖z‖₁ of every row (n,)."""
    x, D, lambd = _check(x, D, lambd)
    _check_codes(z, x, D, "z")
    return 0.5 * (x - z @ D.T).square().sum(-1) + lambd * z.abs().sum(-1)


def _check_codes(z: Tensor | None, x: Tensor, D: Tensor, name: str) -> None:
    if z is None:
        return
    check_finite(z, name)
    if tuple(z.shape) != (x.shape[0], D.shape[1]):
        raise ConfigError(f"{name} must be codes of shape ({x.shape[0]}, {D.shape[1]}), got {tuple(z.shape)}")


def _converged(z: Tensor, eta: float, D: Tensor, what: str) -> Tensor:
    """The codes, refused when the iteration diverged (a step above 2/L): never returned as inf or NaN."""
    if not bool(torch.isfinite(z).all()):
        raise NonFiniteError(f"{what} diverged to non-finite codes with step {eta:g}; the step must stay below "
                             f"2/L = {2 / lipschitz(D):g} (the default is 1/L)")
    return z


def _step_size(D: Tensor, step: float | None) -> float:
    if step is None:
        L = lipschitz(D)
        if not L > 0:
            raise ConfigError("the dictionary is zero: the LASSO has no step size")
        return 1.0 / L
    return check_number(step, "step", low=0.0, low_open=True, high=1e12)


def ista(x: Tensor, D: Tensor, lambd: float, iterations: int, *, step: float | None = None, z0: Tensor | None = None,
         nonnegative: bool = False, callback: Callable[[int, Tensor], None] | None = None) -> Tensor:
    """``iterations`` ISTA steps (non-negative ISTA with ``nonnegative=True``) from z0 (default 0) with step η
    (default 1/L); ``callback(t, z_t)`` after every step t = 1, 2, …. Returns the codes (n, m)."""
    x, D, lambd = _check(x, D, lambd)
    _check_codes(z0, x, D, "z0")
    iterations = check_int(iterations, "iterations", low=0, high=1 << 24)
    eta = _step_size(D, step)
    z = torch.zeros(x.shape[0], D.shape[1], dtype=x.dtype) if z0 is None else z0.clone().to(x.dtype)
    xd, gram = x @ D, D.T @ D
    for t in range(1, iterations + 1):
        v = z + eta * (xd - z @ gram)
        z = torch.relu(v - eta * lambd) if nonnegative else soft_threshold(v, eta * lambd)
        if callback is not None:
            callback(t, z)
    return _converged(z, eta, D, "ISTA")


def nonnegative_ista(x: Tensor, D: Tensor, lambd: float, iterations: int, **kwargs) -> Tensor:
    """:func:`ista` with ``nonnegative=True``: ``z ← ReLU(z + η Dᵀ(x − D z) − ηλ)``."""
    return ista(x, D, lambd, iterations, nonnegative=True, **kwargs)


def fista(x: Tensor, D: Tensor, lambd: float, iterations: int, *, step: float | None = None,
          z0: Tensor | None = None, callback: Callable[[int, Tensor], None] | None = None) -> Tensor:
    """``iterations`` FISTA steps from z0 (default 0), step η (default 1/L); ``callback(t, z_t)`` after each."""
    x, D, lambd = _check(x, D, lambd)
    _check_codes(z0, x, D, "z0")
    iterations = check_int(iterations, "iterations", low=0, high=1 << 24)
    eta = _step_size(D, step)
    z = torch.zeros(x.shape[0], D.shape[1], dtype=x.dtype) if z0 is None else z0.clone().to(x.dtype)
    v, tk = z, 1.0
    xd, gram = x @ D, D.T @ D
    for t in range(1, iterations + 1):
        z_next = soft_threshold(v + eta * (xd - v @ gram), eta * lambd)
        t_next = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
        v = z_next + ((tk - 1) / t_next) * (z_next - z)
        z, tk = z_next, t_next
        if callback is not None:
            callback(t, z)
    return _converged(z, eta, D, "FISTA")


@torch.no_grad()
def crate_block_as_step(block, x: Tensor) -> dict:
    """CRATE's ISTA block next to one non-negative ISTA step on its own LASSO (D = the block's weight, z₀ = x, its
    η and λ): ``{"block", "step", "max_abs_difference", "step_size", "lambd", "eta_times_L"}``."""
    check_finite(x, "x")
    D = block.weight.detach()
    tokens = x.reshape(-1, x.shape[-1]).to(D.dtype)
    out = block(tokens)
    step = nonnegative_ista(tokens, D, block.lambd, 1, step=block.step_size, z0=tokens)
    return {"block": out, "step": step, "max_abs_difference": float((out - step).abs().max()),
            "step_size": block.step_size, "lambd": block.lambd, "eta_times_L": block.step_size * lipschitz(D)}
