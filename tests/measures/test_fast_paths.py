"""The speed paths keep the values: folded ISTA, lazy finiteness checks, fused Gram log-determinants, projections."""
import sys

import pytest
import torch

import srr
from srr.errors import NonFiniteError
from srr.measures import logdet_i_plus
from srr.measures.logdet import gram, gram_logdet
from srr.measures.subspace import _project
from srr.operators import ISTA

from paths import ROOT

D64 = torch.float64


def three_products(x, w, eta=0.1, lam=0.1):
    return torch.relu(x + eta * (x @ w - (x @ w.T) @ w) - eta * lam)


@pytest.mark.parametrize("rows", [3, 40])  # fewer tokens than dim: two products; more: the folded product
def test_ista_paths_equal_three_products_with_gradients(rows):
    ista = ISTA(16).double()
    x = torch.randn(2, rows, 16, dtype=D64, requires_grad=True)
    out = ista(x)
    x2 = x.detach().clone().requires_grad_(True)
    w2 = ista.weight.detach().clone().requires_grad_(True)
    ref = three_products(x2, w2)
    assert torch.allclose(out, ref, atol=1e-12)
    g = torch.randn_like(out)
    out.backward(g), ref.backward(g)
    assert torch.allclose(x.grad, x2.grad, atol=1e-12)
    assert torch.allclose(ista.weight.grad, w2.grad, atol=1e-12)
    assert float((out == 0).double().mean()) > 0.05  # the threshold is active, so the ReLU mask is tested too


def test_ista_cache_follows_weight_updates():
    ista = ISTA(8)
    x = torch.randn(5, 8)
    with torch.no_grad():
        first = ista(x)
        assert torch.allclose(first, three_products(x, ista.weight), atol=1e-6)
        cached = ista._cache[1]
        ista(x)
        assert ista._cache[1] is cached  # reused while the weight is unchanged
    ista(x).sum().backward()
    with torch.no_grad():
        ista.weight.sub_(0.5 * ista.weight.grad)  # an in-place update, as an optimizer step: bumps the version
        assert torch.allclose(ista(x), three_products(x, ista.weight), atol=1e-6)
        ista.load_state_dict({"weight": torch.eye(8)})
        assert torch.allclose(ista(x), three_products(x, torch.eye(8)), atol=1e-6)


def test_gram_logdet_equals_logdet_of_either_side():
    z = torch.randn(3, 2, 9, 5, dtype=D64)  # d < m
    expect = torch.logdet(torch.eye(5, dtype=D64) + 0.7 * z.mT @ z)
    assert torch.allclose(gram_logdet(z, 0.7), expect, atol=1e-10)
    zw = torch.randn(4, 3, 11, dtype=D64)  # d > m: sample side
    g, sample_side = gram(zw)
    assert sample_side and torch.allclose(gram_logdet(zw, 0.7), logdet_i_plus(g, 0.7), atol=1e-10)
    assert gram_logdet(torch.randn(0, 4), 1.0).shape == ()


@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 30])  # one matrix per chunk, a few, the whole batch
def test_chunked_log_determinants_equal_one_batched_logdet_with_gradients(monkeypatch, chunk_bytes):
    monkeypatch.setattr("srr.measures.logdet.CHUNK_BYTES", chunk_bytes)
    z = torch.randn(7, 3, 9, 5, dtype=D64, requires_grad=True)  # 21 matrices, d < m
    got = gram_logdet(z, 0.7)
    expect = torch.logdet(torch.eye(5, dtype=D64) + 0.7 * z.mT @ z)
    assert got.shape == (7, 3) and torch.allclose(got, expect, atol=1e-10)
    g = torch.randn(7, 3, dtype=D64)
    (grad,) = torch.autograd.grad(got, z, g)
    (grad_ref,) = torch.autograd.grad(expect, z, g)
    assert torch.allclose(grad, grad_ref, atol=1e-10)
    # token sets against shared subspaces: projection, normalisation and logdet chunked over the samples
    tokens = torch.randn(6, 2, 8, 10, dtype=D64)
    u = torch.randn(2, 3, 10, 4, dtype=D64)
    w = torch.nn.functional.normalize(tokens.unsqueeze(-3) @ u, dim=-1)
    ref = 0.5 * torch.logdet(torch.eye(8, dtype=D64) + 4 / (8 * 0.1**2) * w @ w.mT)  # N × N side, (6, 2, 3)
    out = srr.subspace_compression(tokens, u, 0.1, normalize=True, reduction="none")
    assert out.shape == (6, 2, 3) and torch.allclose(out, ref, atol=1e-10)


def test_chunks_run_in_threads_only_without_autograd_and_agree(monkeypatch, two_threads):
    import srr.measures.logdet as logdet

    monkeypatch.setattr(logdet, "CHUNK_BYTES", 2000)
    pools = []
    real_pool = logdet._pool
    monkeypatch.setattr(logdet, "_pool", lambda n: pools.append(n) or real_pool(n))
    tokens = torch.randn(9, 2, 8, 10, dtype=D64)
    u = torch.randn(2, 3, 10, 4, dtype=D64)
    w = torch.nn.functional.normalize(tokens.unsqueeze(-3) @ u, dim=-1)
    ref = 0.5 * torch.logdet(torch.eye(8, dtype=D64) + 4 / (8 * 0.1**2) * w @ w.mT)
    with torch.no_grad():  # both levels chunked: the samples in threads, their log-determinants in order
        got = srr.subspace_compression(tokens, u, 0.1, normalize=True, reduction="none")
        rates = srr.coding_rate(w, 0.1)
    assert pools and torch.allclose(got, ref, atol=1e-10)
    assert torch.allclose(rates, srr.coding_rate(tokens.unsqueeze(-3) @ u, 0.1, normalize=True), atol=1e-12)
    pools.clear()  # a gradient to U (Z without one): in order, in this thread, the graph kept
    u.requires_grad_(True)
    out = srr.subspace_compression(tokens, u, 0.1, normalize=True).sum()
    (grad,) = torch.autograd.grad(out, u)
    u_ref = u.detach().clone().requires_grad_(True)
    w_ref = torch.nn.functional.normalize(tokens.unsqueeze(-3) @ u_ref, dim=-1)
    expect = 0.5 * torch.logdet(torch.eye(8, dtype=D64) + 4 / (8 * 0.1**2) * w_ref @ w_ref.mT).sum()
    (grad_ref,) = torch.autograd.grad(expect, u_ref)
    assert not pools and torch.allclose(out, expect, atol=1e-10) and torch.allclose(grad, grad_ref, atol=1e-10)


def test_coding_rate_normalize_equals_rate_of_normalised_rows():
    z = torch.randn(5, 4, 30, 6, dtype=D64) * torch.rand(5, 4, 30, 1, dtype=D64) * 10
    expect = srr.coding_rate(torch.nn.functional.normalize(z, dim=-1), 0.3)
    assert torch.allclose(srr.coding_rate(z, 0.3, normalize=True), expect, atol=1e-12)
    assert not torch.allclose(srr.coding_rate(z, 0.3), expect, atol=1e-3)  # the rows were not unit length


def test_chunks_fill_the_cache_budget_on_cpu_only():
    from srr.measures.logdet import CHUNK_BYTES, chunk_length

    x = torch.zeros(10_000, 2)
    assert chunk_length(x, 16_640) == CHUNK_BYTES // 16_640  # 65 × 64 float32 tokens: 63 matrices a chunk
    assert chunk_length(x, 10 * CHUNK_BYTES) == 1
    meta = torch.zeros(10_000, 2, device="meta")
    assert chunk_length(meta, 16_640) == 10_000  # other devices: the whole batch in one launch


@pytest.mark.parametrize("ubatch", [(), (3,), (2, 3)])
def test_head_projection_equals_broadcast_product(ubatch):
    z = torch.randn(2, 3, 7, 10, dtype=D64)
    u = torch.randn(*ubatch, 4, 10, 5, dtype=D64)
    assert torch.allclose(_project(z, u), z.unsqueeze(-3) @ u, atol=1e-12)
    u_more = torch.randn(5, 1, 1, 4, 10, 5, dtype=D64)  # more batch dimensions than Z: the broadcast product
    assert _project(z, u_more).shape == (5, 2, 3, 4, 7, 5)


def test_rate_reduction_same_with_and_without_autograd():
    z = torch.nn.functional.normalize(torch.randn(300, 12), dim=1)
    y = torch.randint(0, 5, (300,))
    with torch.no_grad():
        fast = srr.rate_reduction(z, y, 0.5)
    slow = srr.rate_reduction(z.clone().requires_grad_(True), y, 0.5)
    assert float(fast) == pytest.approx(float(slow.detach()), rel=1e-6)


def test_non_finite_values_are_named_without_an_upfront_scan():
    z = torch.nn.functional.normalize(torch.randn(50, 6), dim=1)
    soft = torch.softmax(torch.randn(50, 3), dim=1)
    soft[4, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="memberships contains 1 non-finite"):
        srr.rate_reduction(z, soft, 0.5)
    u = torch.randn(2, 6, 3)
    u[1, 2, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="U contains 1 non-finite"):
        srr.subspace_compression(z, u, 0.5)
    big = torch.full((40, 4), 1e30)  # finite input whose float32 Gram overflows: an overflow message, not NaN
    with pytest.raises(NonFiniteError, match="overflow"):
        srr.coding_rate(big, 0.5)
    assert torch.isfinite(srr.coding_rate(big, 0.5, dtype=D64))


def test_authors_formulation_twin_matches_srr():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from reference_crate import authors_twin

    model = srr.create_model("crate_tiny", image_size=16, patch_size=4, num_classes=5, dim=24, depth=2, heads=3)
    twin = authors_twin(model)
    x = torch.randn(3, 3, 16, 16)
    assert torch.allclose(model(x), twin(x), atol=1e-5)
