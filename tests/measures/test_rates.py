"""Rate measures against closed forms and independent float64 computations (REFERENCE §1)."""
import math

import pytest
import torch

import srr
from srr.measures import logdet_i_plus, memberships

D64 = torch.float64


def ref_logdet(a):
    return torch.logdet(a.to(D64))


def ref_R(z, eps):
    m, d = z.shape
    return 0.5 * ref_logdet(torch.eye(d, dtype=D64) + d / (m * eps**2) * z.to(D64).T @ z.to(D64))


def ref_Rc(z, pi, eps):
    m, d = z.shape
    z, pi = z.to(D64), pi.to(D64)
    total = torch.zeros((), dtype=D64)
    for k in range(pi.shape[1]):
        tr = pi[:, k].sum()
        if tr == 0:
            continue
        g = z.T @ torch.diag(pi[:, k]) @ z
        total += tr / (2 * m) * ref_logdet(torch.eye(d, dtype=D64) + d / (tr * eps**2) * g)
    return total


def test_coding_rate_closed_form_orthonormal_columns():
    m, d, eps = 50, 8, 0.5
    q, _ = torch.linalg.qr(torch.randn(m, d, dtype=D64))
    expected = 0.5 * d * math.log(1 + d / (m * eps**2))
    assert float(srr.coding_rate(q, eps)) == pytest.approx(expected, rel=1e-12)
    # rank r: only r orthonormal columns non-zero
    z = q.clone()
    z[:, 3:] = 0
    assert float(srr.coding_rate(z, eps)) == pytest.approx(0.5 * 3 * math.log(1 + d / (m * eps**2)), rel=1e-12)


def test_both_gram_sides_agree():
    z = torch.randn(7, 30, dtype=D64)  # m < d: the sample side is used
    a = logdet_i_plus(z @ z.T, 0.3)
    b = logdet_i_plus(z.T @ z, 0.3)
    assert float(a) == pytest.approx(float(b), abs=1e-10)
    assert float(srr.coding_rate(z, 0.7)) == pytest.approx(float(ref_R(z, 0.7)), abs=1e-10)


@pytest.mark.parametrize("m,d", [(64, 16), (10, 40)])
def test_coding_rate_matches_float64_logdet(m, d):
    z = torch.nn.functional.normalize(torch.randn(m, d, dtype=D64), dim=1)
    assert float(srr.coding_rate(z, 0.5)) == pytest.approx(float(ref_R(z, 0.5)), abs=1e-8)
    z32 = z.float()
    assert float(srr.coding_rate(z32, 0.5, dtype=D64)) == pytest.approx(float(ref_R(z32, 0.5)), abs=1e-8)


def test_batched_leading_dims_equal_loop():
    z = torch.randn(3, 2, 20, 6, dtype=D64)
    out = srr.coding_rate(z, 0.4)
    assert out.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            assert float(out[i, j]) == pytest.approx(float(ref_R(z[i, j], 0.4)), abs=1e-10)


def test_compressed_rate_hard_and_soft_labels():
    z = torch.nn.functional.normalize(torch.randn(60, 10, dtype=D64), dim=1)
    y = torch.randint(0, 4, (60,))
    pi = memberships(y, 5, dtype=D64)  # class 4 is empty and contributes 0
    expected = float(ref_Rc(z, pi, 0.5))
    assert float(srr.compressed_rate(z, y, 0.5, num_classes=5)) == pytest.approx(expected, abs=1e-8)
    assert float(srr.compressed_rate(z, pi, 0.5)) == pytest.approx(expected, abs=1e-8)
    soft = torch.softmax(torch.randn(60, 3, dtype=D64), dim=1)
    assert float(srr.compressed_rate(z, soft, 0.5)) == pytest.approx(float(ref_Rc(z, soft, 0.5)), abs=1e-8)


def test_rate_reduction_is_R_minus_Rc_and_batched():
    z = torch.randn(2, 40, 12, dtype=D64)
    y = torch.randint(0, 3, (2, 40))
    dr = srr.rate_reduction(z, y, 0.5, num_classes=3)
    assert dr.shape == (2,)
    for b in range(2):
        exp = ref_R(z[b], 0.5) - ref_Rc(z[b], memberships(y[b], 3, dtype=D64), 0.5)
        assert float(dr[b]) == pytest.approx(float(exp), abs=1e-8)
        assert float(srr.rate_reduction(z[b], y[b], 0.5)) == pytest.approx(float(exp), abs=1e-8)


def test_orthogonal_classes_maximise_rate_reduction():
    # two classes on orthogonal lines: ΔR > 0; both classes on one line: ΔR smaller
    e = torch.eye(4, dtype=D64)
    z_orth = torch.cat([e[0].repeat(10, 1), e[1].repeat(10, 1)])
    z_same = e[0].repeat(20, 1)
    y = torch.tensor([0] * 10 + [1] * 10)
    assert float(srr.rate_reduction(z_orth, y, 0.5)) > float(srr.rate_reduction(z_same, y, 0.5)) + 0.5


def test_subspace_compression_against_token_side_logdet():
    z = torch.randn(3, 9, 12, dtype=D64)  # 3 samples, N=9 tokens, d=12
    u = torch.randn(4, 12, 3, dtype=D64)  # K=4 heads, p=3 < N: p × p side
    eps = 0.3
    out = srr.subspace_compression(z, u, eps, reduction="none")
    assert out.shape == (3, 4)
    for b in range(3):
        for k in range(4):
            w = z[b] @ u[k]
            exp = 0.5 * ref_logdet(torch.eye(9, dtype=D64) + 3 / (9 * eps**2) * w @ w.T)
            assert float(out[b, k]) == pytest.approx(float(exp), abs=1e-10)
    assert torch.allclose(srr.subspace_compression(z, u, eps), out.sum(-1))
    u_wide = torch.randn(2, 12, 20, dtype=D64)  # p > N: N × N side
    w = z[0] @ u_wide[1]
    exp = 0.5 * ref_logdet(torch.eye(20, dtype=D64) + 20 / (9 * eps**2) * w.T @ w)
    assert float(srr.subspace_compression(z[0], u_wide, eps, reduction="none")[1]) == pytest.approx(float(exp))


def test_subspace_compression_normalize_and_heads_from_qkv():
    weight = torch.randn(6, 5, dtype=D64)  # 2 heads of width 3, d = 5
    u = srr.heads_from_qkv(weight, 2)
    assert u.shape == (2, 5, 3)
    assert torch.equal(u[1].T, weight[3:])
    z = torch.randn(7, 5, dtype=D64)
    w = torch.nn.functional.normalize(z @ u[0], dim=-1)
    exp = 0.5 * ref_logdet(torch.eye(3, dtype=D64) + 3 / (7 * 0.1**2) * w.T @ w)
    got = srr.subspace_compression(z, u, 0.1, normalize=True, reduction="none")[0]
    assert float(got) == pytest.approx(float(exp), abs=1e-10)


def test_sparsity_and_sparse_rate_reduction():
    z = torch.zeros(2, 4, 5)
    z[0, :2, :] = 1.0
    assert srr.sparsity(z).tolist() == [0.5, 0.0]
    z = torch.relu(torch.randn(6, 8, dtype=D64))
    u = torch.randn(2, 8, 4, dtype=D64)
    exp = ref_R(z, 0.5) - srr.subspace_compression(z, u, 0.5) - 0.1 * (z != 0).sum()
    assert float(srr.sparse_rate_reduction(z, u, 0.5, 0.1)) == pytest.approx(float(exp), abs=1e-10)
    exp1 = ref_R(z, 0.5) - srr.subspace_compression(z, u, 0.5) - 0.1 * z.abs().sum()
    assert float(srr.sparse_rate_reduction(z, u, 0.5, 0.1, norm="l1")) == pytest.approx(float(exp1), abs=1e-10)


def test_gradients_match_float64_autograd_of_logdet():
    z = torch.randn(30, 6, dtype=D64, requires_grad=True)
    (g,) = torch.autograd.grad(srr.coding_rate(z, 0.5), z)
    z2 = z.detach().clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(ref_R(z2, 0.5), z2)
    assert torch.allclose(g, g_ref, atol=1e-10)
    y = torch.randint(0, 3, (30,))
    assert torch.autograd.gradcheck(lambda t: srr.rate_reduction(t, y, 0.5), (z,))


def test_cholesky_failure_falls_back_to_eigenvalues():
    # the internal form (Gram matrices made by srr, whose round-off may be indefinite) clamps at zero; the public
    # logdet_i_plus refuses a G that is indefinite beyond round-off instead of returning a number
    from srr.errors import ConfigError
    from srr.measures.logdet import _logdet_i_plus

    g = -2.0 * torch.eye(3, dtype=D64)  # I + g is not positive definite: the eigen path clamps at zero
    assert float(_logdet_i_plus(g, 1.0)) == 0.0
    g = torch.diag(torch.tensor([1.0, 2.0, -3.0], dtype=D64))
    assert float(_logdet_i_plus(g, 1.0)) == pytest.approx(math.log(2) + math.log(3))
    with pytest.raises(ConfigError, match="not positive semi-definite"):
        logdet_i_plus(g, 1.0)
    # round-off indefiniteness is accepted: a rank-one Gram whose computed eigenvalues dip below zero
    z = torch.randn(500, 1, dtype=torch.float32) @ torch.randn(1, 40)
    g = z.mT @ z
    assert float(torch.linalg.eigvalsh(g).min()) < 0
    assert torch.isfinite(logdet_i_plus(g, 10.0))


def test_nearly_singular_float32_stays_finite():
    base = torch.randn(2000, 1)
    z = (base @ torch.randn(1, 64)).float()  # rank one, huge m: torch.logdet on the Gram returns NaN or -inf here
    with pytest.warns(RuntimeWarning, match="float64"):
        r = srr.coding_rate(z, 1e-3)
    assert torch.isfinite(r)
    exact = float(ref_R(z.double(), 1e-3))
    # condition number ~4e9: float64 itself resolves the unit eigenvalues to about 1e-6
    assert float(srr.coding_rate(z, 1e-3, dtype=D64)) == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_raises(bad):
    z = torch.randn(5, 3)
    z[2, 1] = bad
    with pytest.raises(ValueError, match="non-finite"):
        srr.coding_rate(z, 0.5)
    with pytest.raises(ValueError, match="non-finite"):
        srr.rate_reduction(z, torch.zeros(5, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="non-finite"):
        srr.subspace_compression(z, torch.randn(1, 3, 2), 0.5)


def test_bad_arguments_raise_clear_errors():
    z = torch.randn(5, 3)
    with pytest.raises(ValueError, match="not ε²"):
        srr.coding_rate(z, 0.0)
    with pytest.raises(ValueError, match="out of range"):
        srr.rate_reduction(z, torch.tensor([0, 1, 2, 3, 4]), 0.5, num_classes=3)
    with pytest.raises(ValueError, match="do not match"):
        srr.compressed_rate(z, torch.zeros(4, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="does not match"):
        srr.subspace_compression(z, torch.randn(2, 4, 2), 0.5)


def test_half_precision_input_computes_in_float32():
    z = torch.randn(40, 8).to(torch.bfloat16)
    r = srr.coding_rate(z, 0.5)
    assert r.dtype == torch.float32
    assert float(r) == pytest.approx(float(ref_R(z.float(), 0.5)), rel=1e-5)


def test_agrees_with_pypi_mcr2_when_installed():
    pytest.importorskip("mcr2")
    from mcr2.primitives.coding_rate import DeltaR, R, Rc

    # mcr2 builds float32 tensors internally: compare on float32 input, srr computing in float64
    z = torch.nn.functional.normalize(torch.randn(200, 16), dim=1)
    y = torch.randint(0, 4, (200,))
    onehot = memberships(y, 4)
    assert float(srr.coding_rate(z, 0.5, dtype=D64)) == pytest.approx(float(R(z, 0.5)), rel=1e-5)
    assert float(srr.compressed_rate(z, y, 0.5, dtype=D64)) == pytest.approx(float(Rc(z, onehot, 0.5)), rel=1e-5)
    assert float(srr.rate_reduction(z, y, 0.5, dtype=D64)) == pytest.approx(float(DeltaR(z, onehot, 0.5)), rel=1e-4)
