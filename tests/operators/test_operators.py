"""Family operators against independent transcriptions of their formulas: ODL (§3), TSSA (§4), the §8 variants.

Each reference below is written from REFERENCE.md directly (explicit loops over heads, column notation for §8),
with random weights and inputs, compared at 1e-5 in float64.
"""
import pytest
import torch

from srr.errors import ConfigError
from srr.operators import MSSA, ODL, TSSA

from references import odl_reference, randomise, ssa_columns, tssa_reference

TOL = dict(atol=1e-5, rtol=1e-5)




# --- CRATE-α's overcomplete dictionary learning, REFERENCE §3 ------------------------------------------------------



@pytest.mark.parametrize("decouple", [True, False])
def test_odl_matches_reference_formula(decouple):
    dim = 12
    odl = randomise(ODL(dim, decouple=decouple).double(), scale=0.4)
    assert tuple(odl.D.shape) == (dim, 4 * dim)
    x = torch.randn(3, 7, dim, dtype=torch.float64)
    expected, codes = odl_reference(x, odl.D, odl.D1 if decouple else odl.D)
    torch.testing.assert_close(odl(x), expected, **TOL)
    torch.testing.assert_close(odl.codes(x), codes, **TOL)
    assert (codes == 0).any() and (codes > 0).any()  # the thresholds are active: a real test of both ReLUs


def test_odl_step_and_threshold_are_used():
    odl = randomise(ODL(8, step_size=0.3, lambd=0.05).double())
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(odl(x), odl_reference(x, odl.D, odl.D1, eta=0.3, lam=0.05)[0], **TOL)


def test_odl_default_initialisation_is_kaiming_uniform():
    torch.manual_seed(0)
    odl = ODL(64)
    bound = (6 / 256) ** 0.5  # kaiming_uniform_ with a = 0: gain √2, fan-in 4d = 256 → bound √(6 / fan_in)
    assert odl.D.abs().max() <= bound and odl.D.abs().max() > 0.9 * bound
    assert not torch.equal(odl.D, odl.D1)


# --- token-statistics self-attention, REFERENCE §4 ------------------------------------------------------------------



@pytest.mark.parametrize("qkv_bias,dim_head", [(False, 6), (True, 5)])
def test_tssa_matches_reference_formula(qkv_bias, dim_head):
    dim, heads = 12, 3
    tssa = randomise(TSSA(dim, heads, dim_head, qkv_bias=qkv_bias).double())
    x = torch.randn(2, 9, dim, dtype=torch.float64)
    expected, pi = tssa_reference(x, tssa.qkv.weight, tssa.qkv.bias, tssa.temp, tssa.to_out[0].weight,
                                  tssa.to_out[0].bias, heads)
    torch.testing.assert_close(tssa(x), expected, **TOL)
    torch.testing.assert_close(tssa.memberships(x), pi.permute(1, 0, 2), **TOL)
    torch.testing.assert_close(tssa.memberships(x).sum(1), torch.ones(2, 9, dtype=torch.float64), **TOL)


def test_tssa_statistics_are_permutation_equivariant_and_linear_shape():
    tssa = randomise(TSSA(8, 2, 4).double())
    x = torch.randn(1, 11, 8, dtype=torch.float64)
    perm = torch.randperm(11)
    torch.testing.assert_close(tssa(x)[:, perm], tssa(x[:, perm]), **TOL)


def test_tssa_never_forms_a_token_by_token_tensor():
    """Record every tensor the forward and backward produce: none has N² elements (N = 1024, d = 32)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    Largest.largest = max(Largest.largest, t.numel())
            return out

    n, d = 1024, 32
    tssa = TSSA(d, 4, 8)
    x = torch.randn(1, n, d, requires_grad=True)
    with Largest():
        tssa(x).sum().backward()
    assert Largest.largest <= 2 * n * d < n * n


# --- the compression-step variants, REFERENCE §8 (tokens as columns) ----------------------------------------------



@pytest.mark.parametrize("output", ["subspace", "negative", "transpose"])
def test_variant_outputs_match_section_8(output):
    dim, heads, p, step = 12, 3, 4, 0.7
    mssa = randomise(MSSA(dim, heads, p, output=output, step=step).double())
    x = torch.randn(2, 6, dim, dtype=torch.float64)
    U = mssa.qkv.weight.T  # d × Kp = [U_1 … U_K]
    for b in range(2):
        Z = x[b].T
        heads_out = [ssa_columns(Z, U[:, k * p:(k + 1) * p], p**-0.5) for k in range(heads)]
        if output == "transpose":  # output through Uᵀ: [U_1 … U_K]ᵀ [SSA_1; …; SSA_K] (needs Kp = d)
            Y = step * U.T @ torch.cat(heads_out, 0)
        else:
            Y = sum(U[:, k * p:(k + 1) * p] @ heads_out[k] for k in range(heads))
            Y = step * Y if output == "subspace" else -step * Y
        torch.testing.assert_close(mssa(x)[b], Y.T, **TOL)
    assert [n for n, _ in mssa.named_parameters()] == ["qkv.weight"]  # no new parameters


def test_negative_is_minus_subspace_and_learned_unchanged():
    x = torch.randn(2, 5, 8)
    c, n = MSSA(8, 2, 4, output="subspace"), MSSA(8, 2, 4, output="negative")
    n.load_state_dict(c.state_dict())
    torch.testing.assert_close(n(x), -c(x))
    learned = MSSA(8, 2, 4)
    assert sorted(learned.state_dict()) == ["qkv.weight", "to_out.0.bias", "to_out.0.weight"]


def test_variant_errors():
    with pytest.raises(ConfigError, match="heads\\*dim_head == dim"):
        MSSA(12, 2, 4, output="transpose")
    with pytest.raises(ConfigError, match="learned, subspace, negative, transpose"):
        MSSA(8, 2, 4, output="free")
