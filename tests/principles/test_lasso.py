"""ISTA, FISTA and non-negative ISTA against scikit-learn's Lasso; CRATE's ISTA block as one non-negative step."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from srr.errors import ConfigError
from srr.operators import ISTA
from srr.principles import crate_block_as_step, fista, ista, lasso_objective, lipschitz, nonnegative_ista

pytestmark = pytest.mark.usefixtures("one_thread")


def problem(seed=0, d=20, m=40, n=4):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(d, m, generator=g, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64), D / D.norm(dim=0)


def sklearn_lasso(x, D, lambd, positive=False):
    """scikit-learn minimises (1/(2d))‖x − D z‖² + α‖z‖₁ over one signal of d values: α = λ/d."""
    d = D.shape[0]
    return np.stack([Lasso(alpha=lambd / d, fit_intercept=False, tol=1e-14, max_iter=1_000_000, positive=positive)
                     .fit(D.numpy(), row.numpy()).coef_ for row in x])


@pytest.mark.parametrize("lambd", [0.05, 0.3])
def test_ista_and_fista_reach_the_lasso_solution_of_scikit_learn(lambd):
    x, D = problem()
    reference = sklearn_lasso(x, D, lambd)
    assert (reference != 0).any() and (reference == 0).any()  # a sparse, non-trivial solution
    assert np.abs(ista(x, D, lambd, 20000).numpy() - reference).max() < 1e-4
    assert np.abs(fista(x, D, lambd, 5000).numpy() - reference).max() < 1e-4
    positive = sklearn_lasso(x, D, lambd, positive=True)
    assert np.abs(nonnegative_ista(x, D, lambd, 20000).numpy() - positive).max() < 1e-4


def test_ista_lowers_the_objective_at_every_step_and_fista_is_faster():
    x, D = problem(1)
    values = []
    ista(x, D, 0.1, 60, callback=lambda t, z: values.append(float(lasso_objective(x, D, z, 0.1).sum())))
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:]))
    best = float(lasso_objective(x, D, fista(x, D, 0.1, 4000), 0.1).sum())
    gap_ista = values[-1] - best
    gap_fista = float(lasso_objective(x, D, fista(x, D, 0.1, 60), 0.1).sum()) - best
    assert gap_fista < 0.1 * gap_ista


@pytest.mark.parametrize("tokens", [3, 40])  # the block's two code paths: two products (few tokens), folded matrix
def test_crate_ista_block_is_one_nonnegative_ista_step_from_the_tokens(tokens):
    torch.manual_seed(0)
    block = ISTA(24, step_size=0.1, lambd=0.1)
    x = torch.randn(tokens, 24)
    result = crate_block_as_step(block, x)
    assert result["max_abs_difference"] < 1e-5
    D = block.weight.detach()
    by_hand = torch.relu(x + 0.1 * (x - x @ D.T) @ D - 0.01)  # z₀ = x: z + η Dᵀ(x − D z) − ηλ in rows
    torch.testing.assert_close(result["step"], by_hand, atol=1e-5, rtol=1e-5)
    assert result["eta_times_L"] == pytest.approx(0.1 * lipschitz(D))


def test_bad_arguments_are_refused():
    x, D = problem()
    with pytest.raises(ConfigError, match="dictionary"):
        ista(x, D.T, 0.1, 3)
    with pytest.raises(ConfigError, match="lambd"):
        fista(x, D, -1.0, 3)
    with pytest.raises(ConfigError, match="step"):
        ista(x, D, 0.1, 3, step=0.0)
