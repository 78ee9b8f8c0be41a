"""The mixture of low-rank Gaussians: the closed-form denoiser against autograd of the density, the oracle's error,
the reverse-time sampler."""
import math

import pytest
import torch

from srr.errors import ConfigError
from srr.principles import (log_density, low_rank_mixture, nearest_subspace, oracle_mean, posterior_mean,
                            posterior_weights, reverse_sample, score)

pytestmark = pytest.mark.usefixtures("one_thread")


def mixture_log_density(y, mix, sigma):
    """log Σ_k π_k N(y; 0, U_k U_kᵀ + σ² I), from full covariance matrices (independent of the closed form)."""
    cov = mix.bases @ mix.bases.mT + sigma**2 * torch.eye(mix.d, dtype=torch.float64)
    normal = torch.distributions.MultivariateNormal(torch.zeros(mix.d, dtype=torch.float64), covariance_matrix=cov)
    return torch.logsumexp(normal.log_prob(y.unsqueeze(1)) + mix.priors.log(), dim=-1)


@pytest.mark.parametrize("sigma", [0.05, 0.4, 1.0, 3.0])
@pytest.mark.parametrize("priors", [None, [0.1, 0.2, 0.3, 0.4]])
def test_posterior_mean_is_tweedie_of_the_mixture_density(sigma, priors):
    mix = low_rank_mixture(4, 10, 3, seed=1, priors=priors)
    _, y, _ = mix.sample(64, sigma, torch.Generator().manual_seed(2))
    y = y.requires_grad_(True)
    logp = mixture_log_density(y, mix, sigma)
    (grad,) = torch.autograd.grad(logp.sum(), y)
    y = y.detach()
    torch.testing.assert_close(posterior_mean(y, mix, sigma), y + sigma**2 * grad, atol=1e-6, rtol=0)
    torch.testing.assert_close(score(y, mix, sigma), grad, atol=1e-6 / sigma**2, rtol=1e-9)
    torch.testing.assert_close(log_density(y, mix, sigma), logp.detach(), atol=1e-9, rtol=1e-12)
    w = posterior_weights(y, mix, sigma)
    assert torch.allclose(w.sum(-1), torch.ones(64, dtype=torch.float64))


def test_oracle_error_is_p_sigma2_over_1_plus_sigma2():
    mix = low_rank_mixture(3, 12, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    for sigma in (0.3, 1.5):
        x, y, labels = mix.sample(40000, sigma, g)
        mse = float((oracle_mean(y, labels, mix, sigma) - x).square().sum(-1).mean())
        assert mse == pytest.approx(2 * sigma**2 / (1 + sigma**2), rel=0.03)


def test_nearest_subspace_of_points_on_and_off_the_subspaces():
    mix = low_rank_mixture(3, 6, 2, seed=4)
    on = torch.stack([mix.bases[k] @ torch.tensor([1.0, -2.0], dtype=torch.float64) for k in range(3)])
    dist, idx = nearest_subspace(on, mix)
    assert idx.tolist() == [0, 1, 2] and float(dist.max()) < 1e-7
    normal = torch.linalg.qr(torch.cat([mix.bases[0], torch.randn(6, 1, dtype=torch.float64)], 1))[0][:, 2]
    off = on[:1] + 0.01 * normal  # 0.01 from subspace 0, farther from the others
    dist, idx = nearest_subspace(off, mix)
    assert idx.item() == 0 and float(dist) == pytest.approx(0.01, rel=1e-6)


def test_reverse_sampler_lands_on_the_subspaces_in_equal_shares():
    mix = low_rank_mixture(4, 12, 2, seed=3)
    res = reverse_sample(mix, 1200, sigma_max=8.0, sigma_min=0.01, steps=120,
                         generator=torch.Generator().manual_seed(5))
    dist, idx = nearest_subspace(res["samples"], mix)
    shares = torch.bincount(idx, minlength=4).double() / 1200
    assert float((shares - 0.25).abs().max()) < 0.05  # four standard deviations of a share at n = 1200
    assert float(dist.mean()) < 1e-3  # the final denoised samples lie on the subspaces
    last, _ = nearest_subspace(res["last"], mix)  # the iterate at σ_min: noise of σ_min in the d − p normal directions
    assert float(last.mean()) == pytest.approx(0.01 * math.sqrt(10), rel=0.25)
    assert float(res["samples"].square().sum(-1).mean()) == pytest.approx(2.0, rel=0.1)  # E‖x‖² = p
    assert res["trajectory"][0]["sigma"] == 8.0 and res["trajectory"][-1]["sigma"] == pytest.approx(0.01)


def test_bad_arguments_are_refused():
    mix = low_rank_mixture(2, 4, 1)
    with pytest.raises(ConfigError, match="sigma"):
        posterior_mean(torch.zeros(3, 4), mix, 0.0)
    with pytest.raises(ConfigError, match=r"\(n, 4\)"):
        posterior_mean(torch.zeros(3, 5), mix, 1.0)
    with pytest.raises(ConfigError, match="priors"):
        low_rank_mixture(2, 4, 1, priors=[0.7, 0.7])
    with pytest.raises(ConfigError, match="rank"):
        low_rank_mixture(2, 4, 5)
    with pytest.raises(ConfigError, match="sigma_min"):
        reverse_sample(mix, 4, sigma_max=1.0, sigma_min=2.0)
