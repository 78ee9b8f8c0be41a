"""A mixture of low-rank Gaussians and its exact denoiser, score and reverse-time sampler (see docs/principles.md).

The model: K subspaces of R^d, each with an orthonormal basis U_k (d × p), and priors π_k;

    x = U_k a,  a ~ N(0, I_p),  k ~ π          (x ~ Σ_k π_k N(0, U_k U_kᵀ))
    y = x + σ g,  g ~ N(0, I_d)                 (y ~ p_σ = Σ_k π_k N(0, U_k U_kᵀ + σ² I))

Everything below is in closed form (float64). With (U Uᵀ + σ² I)⁻¹ = (I − U Uᵀ/(1 + σ²))/σ²:

    log N(y; 0, U_k U_kᵀ + σ² I) = −½ [d log 2π + p log(1 + σ²) + (d − p) log σ² + ‖y‖²/σ² − ‖U_kᵀ y‖²/(σ²(1 + σ²))]
    w_k(y)  = P(k | y) = softmax_k( log π_k + ‖U_kᵀ y‖² / (2σ²(1 + σ²)) )
    E[x | y] = Σ_k w_k(y) U_k U_kᵀ y / (1 + σ²)                         (the posterior mean)
    ∇ log p_σ(y) = (E[x | y] − y) / σ²                                   (Tweedie's formula, read backwards)

The posterior mean is attention whose keys are the subspaces: a softmax over the energies ‖U_kᵀ y‖² weighs the
projections U_k U_kᵀ y. The oracle that knows k returns U_k U_kᵀ y/(1 + σ²), with expected squared error
p σ²/(1 + σ²).

The reverse-time sampler integrates the variance-exploding reverse SDE with the exact score by Euler–Maruyama on a
geometric grid σ_0 = σ_max > σ_1 > … > σ_N = σ_min, starting from pure noise y ~ N(0, σ_max² I):

    y ← y + (σ_i² − σ_{i+1}²) ∇ log p_{σ_i}(y) + √(σ_i² − σ_{i+1}²) g

and finally returns E[x | y, σ_min] (one last denoising step). Its samples lie on the subspaces, a fraction π_k on
subspace k.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_finite, check_int, check_labels, check_memory, check_number
from ..errors import ConfigError

__all__ = ["LowRankMixture", "low_rank_mixture", "log_density", "posterior_weights", "posterior_mean", "score",
           "oracle_mean", "nearest_subspace", "reverse_sample", "noise_levels"]


@dataclass
class LowRankMixture:
    """``bases`` (K, d, p) with orthonormal columns, ``priors`` (K,) summing to one; float64."""

    bases: Tensor
    priors: Tensor

    @property
    def k(self) -> int:
        return self.bases.shape[0]

    @property
    def d(self) -> int:
        return self.bases.shape[1]

    @property
    def p(self) -> int:
        return self.bases.shape[2]

    def sample(self, n: int, sigma: float = 0.0, generator: torch.Generator | None = None
               ) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, y, labels)``: n clean samples x (n, d), their noisy versions y = x + σ g, and the components."""
        n = check_int(n, "n", low=1)
        sigma = check_number(sigma, "sigma", low=0.0, high=1e6)
        check_memory(8 * 3 * n * self.d, f"{n} samples in {self.d} dimensions")
        labels = torch.multinomial(self.priors, n, replacement=True, generator=generator)
        a = torch.randn(n, self.p, generator=generator, dtype=torch.float64)
        x = torch.einsum("ndp,np->nd", self.bases[labels], a)
        y = x + sigma * torch.randn(n, self.d, generator=generator, dtype=torch.float64)
        return x, y, labels


def low_rank_mixture(k: int = 4, d: int = 16, rank: int = 2, seed: int = 0, priors=None) -> LowRankMixture:
    """K independent uniformly random p-dimensional subspaces of R^d (general position), equal priors unless given."""
    k = check_int(k, "k", low=1, high=1 << 12)
    d = check_int(d, "d", low=1, high=1 << 14)
    rank = check_int(rank, "rank", low=1, high=d)
    check_memory(8 * k * d * rank + 8 * d * d, f"{k} bases of {d} x {rank}")
    g = torch.Generator().manual_seed(check_int(seed, "seed", low=0, high=2**63 - 1))
    bases = torch.stack([torch.linalg.qr(torch.randn(d, rank, generator=g, dtype=torch.float64))[0]
                         for _ in range(k)])
    if priors is None:
        pri = torch.full((k,), 1.0 / k, dtype=torch.float64)
    else:
        pri = torch.as_tensor(priors, dtype=torch.float64)
        check_finite(pri, "priors")
        if pri.shape != (k,) or bool((pri <= 0).any()) or abs(float(pri.sum()) - 1) > 1e-9:
            raise ConfigError(f"priors must be {k} positive numbers summing to 1, got {pri.tolist()}")
    return LowRankMixture(bases, pri)


#: The smallest noise level the closed forms take: ‖y‖²/σ² and the score (x̂ − y)/σ² stay finite above it.
SIGMA_MIN = 1e-8


def _check(y: Tensor, mix: LowRankMixture, sigma: float) -> Tensor:
    check_finite(y, "y")
    if y.dim() != 2 or y.shape[1] != mix.d:
        raise ConfigError(f"y must be (n, {mix.d}), got {tuple(y.shape)}")
    check_number(sigma, "sigma", low=SIGMA_MIN, high=1e6)  # below it 1/σ² overflows the scores
    return y.double()


def _stacked(mix: LowRankMixture) -> Tensor:
    """[U_1 … U_K] (d × K·p)."""
    return mix.bases.permute(1, 0, 2).reshape(mix.d, mix.k * mix.p)


def _coordinates(y: Tensor, mix: LowRankMixture) -> Tensor:
    """U_kᵀ y for every sample and component, (n, K, p)."""
    return (y @ _stacked(mix)).view(len(y), mix.k, mix.p)


def _energies(y: Tensor, mix: LowRankMixture) -> Tensor:
    """‖U_kᵀ y‖² for every sample and component, (n, K)."""
    return _coordinates(y, mix).square().sum(-1)


def log_density(y: Tensor, mix: LowRankMixture, sigma: float) -> Tensor:
    """log p_σ(y) of every row (n,), by the closed form of the module docstring."""
    y = _check(y, mix, sigma)
    d, p, s2 = mix.d, mix.p, sigma * sigma
    quad = y.square().sum(-1, keepdim=True) / s2 - _energies(y, mix) / (s2 * (1 + s2))
    logdet = p * math.log1p(s2) + (d - p) * math.log(s2)
    comp = -0.5 * (d * math.log(2 * math.pi) + logdet + quad) + mix.priors.log()
    return torch.logsumexp(comp, dim=-1)


def posterior_weights(y: Tensor, mix: LowRankMixture, sigma: float) -> Tensor:
    """w_k(y) = P(k | y), (n, K): ``softmax_k(log π_k + ‖U_kᵀ y‖² / (2σ²(1 + σ²)))``."""
    y = _check(y, mix, sigma)
    s2 = sigma * sigma
    return torch.softmax(mix.priors.log() + _energies(y, mix) / (2 * s2 * (1 + s2)), dim=-1)


def posterior_mean(y: Tensor, mix: LowRankMixture, sigma: float) -> Tensor:
    """E[x | y] = Σ_k w_k(y) U_k U_kᵀ y / (1 + σ²), (n, d)."""
    w = posterior_weights(y, mix, sigma)
    weighted = w.unsqueeze(-1) * _coordinates(y.double(), mix)  # w_k U_kᵀ y, (n, K, p)
    return weighted.reshape(len(y), -1) @ _stacked(mix).T / (1 + sigma * sigma)


def score(y: Tensor, mix: LowRankMixture, sigma: float) -> Tensor:
    """∇_y log p_σ(y) = (E[x | y] − y)/σ², (n, d)."""
    return (posterior_mean(y, mix, sigma) - y.double()) / (sigma * sigma)


def oracle_mean(y: Tensor, labels: Tensor, mix: LowRankMixture, sigma: float) -> Tensor:
    """E[x | y, k] = U_k U_kᵀ y/(1 + σ²) with the true component k of every row."""
    y = _check(y, mix, sigma)
    labels, _ = check_labels(labels, mix.k, count=len(y), error=ConfigError)
    u = mix.bases[labels]
    return torch.einsum("ndp,np->nd", u, torch.einsum("nd,ndp->np", y, u)) / (1 + sigma * sigma)


def nearest_subspace(x: Tensor, mix: LowRankMixture) -> tuple[Tensor, Tensor]:
    """``(distance, index)``: min_k ‖(I − U_k U_kᵀ) x‖ of every row and the k that attains it."""
    check_finite(x, "x")
    if x.dim() != 2 or x.shape[1] != mix.d:
        raise ConfigError(f"x must be (n, {mix.d}), got {tuple(x.shape)}")
    x = x.double()
    residual2 = x.square().sum(-1, keepdim=True) - _energies(x, mix)
    dist2, idx = residual2.clamp_min(0).min(dim=-1)
    return dist2.sqrt(), idx


def noise_levels(sigma_max: float, sigma_min: float, steps: int) -> Tensor:
    """The geometric grid σ_0 = σ_max > … > σ_steps = σ_min."""
    sigmas = torch.logspace(math.log10(sigma_max), math.log10(sigma_min), steps + 1, dtype=torch.float64)
    sigmas[0], sigmas[-1] = sigma_max, sigma_min  # the ends exactly
    return sigmas


def reverse_sample(mix: LowRankMixture, n: int, sigma_max: float = 10.0, sigma_min: float = 0.01, steps: int = 200,
                   generator: torch.Generator | None = None, record_every: int = 1) -> dict:
    """Draw n samples by the reverse-time sampler of the module docstring.

    Returns ``{"samples"`` (the final E[x | y, σ_min]), ``"last"`` (the iterate y at σ_min), ``"start"`` (the
    noise it began from), ``"trajectory"`` (rows of σ, mean and maximum distance of the iterate to the nearest
    subspace, its mean squared norm, every ``record_every`` steps)``}``.
    """
    n = check_int(n, "n", low=1, high=1 << 26)
    steps = check_int(steps, "steps", low=1, high=1 << 20)
    sigma_max = check_number(sigma_max, "sigma_max", low=0.0, low_open=True, high=1e6)
    sigma_min = check_number(sigma_min, "sigma_min", low=SIGMA_MIN, high=sigma_max, high_open=True)
    check_memory(8 * 6 * n * mix.d + 8 * n * mix.k * mix.d, f"{n} samples of the reverse-time sampler")
    sigmas = noise_levels(sigma_max, sigma_min, steps)
    y = sigma_max * torch.randn(n, mix.d, generator=generator, dtype=torch.float64)
    start, trajectory = y.clone(), []

    def note(s: float):
        dist, _ = nearest_subspace(y, mix)
        trajectory.append({"sigma": s, "distance_mean": float(dist.mean()), "distance_max": float(dist.max()),
                           "norm2_mean": float(y.square().sum(-1).mean())})

    note(float(sigmas[0]))
    for i in range(steps):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        var = s * s - s_next * s_next
        y = y + var * score(y, mix, s) + math.sqrt(var) * torch.randn(y.shape, generator=generator, dtype=y.dtype)
        if (i + 1) % record_every == 0 or i + 1 == steps:
            note(s_next)
    return {"samples": posterior_mean(y, mix, sigma_min), "last": y, "start": start, "trajectory": trajectory,
            "sigmas": sigmas}
