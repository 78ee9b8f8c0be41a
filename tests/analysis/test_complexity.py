"""SRR as a complexity measure: μ_SRR against a hand computation, baselines with known values, Kendall τ and Ψ."""
import math

import pytest
import torch
from scipy.stats import kendalltau

import srr
from srr.analysis.complexity import (granulated_tau, inverse_margin, kendall_tau, layer_modules, parameter_norm,
                                     path_norm, sharpness, srr_measure, srr_penalty, without_layernorm)
from srr.measures import coding_rate, subspace_compression

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(dim=16, depth=2, heads=2)


def test_mu_srr_equals_a_hand_computation_without_layernorm():
    model = srr.create_model("crate_nano", **TINY).eval()
    x = torch.randn(5, 1, 8, 8)
    got = srr_measure(model, x)
    z, terms = model.tokens(x), []
    with torch.no_grad():
        for block, u in zip(model.transformer.layers, model.subspaces()):
            z = block._modules["1"].fn(block.attention(z) + z)  # the layer with both LayerNorms removed
            eps = math.sqrt(8 / 17)  # γ = p/(N ε²) = 1 with p = 8, N = 17 tokens
            r = subspace_compression(z.double(), u.double(), eps) - coding_rate(z.double(), eps)
            terms.append(float((r + 0.1 * (z != 0).sum((-2, -1))).mean()))
    assert got["per_layer"] == pytest.approx(terms, rel=1e-6)
    assert got["mu"] == pytest.approx(sum(terms) / 2) and got["eps"][0] == pytest.approx(eps)
    kept = srr_measure(model, x, remove_layernorm=False)
    assert kept["mu"] != pytest.approx(got["mu"])
    y = model(x)  # the LayerNorms are back
    with without_layernorm(model):
        assert not torch.allclose(model(x), y)
    torch.testing.assert_close(model(x), y)


def test_penalty_is_the_layer_rate_difference_and_names_its_parameters():
    model = srr.create_model("crate_nano", **TINY)
    x = torch.randn(4, 1, 8, 8)
    term, params = srr_penalty(model, x, layer=0)
    rec, u = model.trace(x)[0], model.subspaces()[0]
    eps = math.sqrt(8 / 17)
    expected = (subspace_compression(rec["output"], u, eps) - coding_rate(rec["output"], eps)).mean()
    torch.testing.assert_close(term, expected)
    assert {id(p) for p in params} == {id(p) for p in layer_modules(model)[0].parameters()}
    grads = torch.autograd.grad(term, params, allow_unused=True)
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)


def test_norm_baselines_have_their_closed_forms():
    mlp = srr.create_model("mlp_nano", width=5, depth=1)
    w, v = mlp.layers[0].weight.detach().double(), mlp.layers[1].weight.detach().double()
    assert parameter_norm(mlp) == pytest.approx(float(w.pow(2).sum() + v.pow(2).sum()))
    # all weights squared are non-negative, so the ReLU passes everything: Σ_c Σ_j V²_cj Σ_i W²_ji
    assert path_norm(mlp, (1, 8, 8)) == pytest.approx(float((v.pow(2) @ w.pow(2)).sum()))
    zero = srr.create_model("mlp_nano", width=4, depth=1)
    with torch.no_grad():
        for p in zero.parameters():
            p.zero_()
    x, y = torch.randn(20, 1, 8, 8), torch.randint(0, 10, (20,))
    assert sharpness(zero, x, y) == pytest.approx(0.25)  # no perturbation changes the loss: σ' = 2, the cap
    assert sharpness(mlp, x, y) > 0.25
    lin = srr.create_model("mlp_nano", depth=0)
    with torch.no_grad():
        lin.layers[0].weight.zero_()
        lin.layers[0].weight[:, 0] = torch.arange(10.0)  # logits c · x_0: with x_0 = 1 the margin of class 9 is 1
    xs = torch.zeros(4, 1, 8, 8)
    xs[:, 0, 0, 0] = 1.0
    assert inverse_margin(lin, xs, torch.full((4,), 9)) == pytest.approx(1.0)
    assert math.isinf(inverse_margin(lin, xs, torch.zeros(4, dtype=torch.long)))


def test_kendall_tau_matches_scipy_and_granulated_psi():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (30,), generator=g).tolist()  # with ties
    b = (torch.tensor(a) + torch.randint(0, 4, (30,), generator=g)).tolist()
    assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic)
    assert kendall_tau([1, 1], [2, 3]) is None
    rows = [{"lr": lr, "width": w, "gap": lr * 10 + w} for lr in (1, 2) for w in (1, 2, 3)]
    for r in rows:
        r["good"], r["bad"], r["half"] = r["gap"], -r["gap"], r["gap"] * (1 if r["lr"] == 1 else -1) + 100 * r["lr"]
    assert granulated_tau(rows, ["lr", "width"], "good")["psi"] == pytest.approx(1.0)
    assert granulated_tau(rows, ["lr", "width"], "bad")["psi"] == pytest.approx(-1.0)
    half = granulated_tau(rows, ["lr", "width"], "half")  # right along lr, right for lr=1 and wrong for lr=2 in width
    assert half["per_axis"] == {"lr": pytest.approx(1.0), "width": pytest.approx(0.0)} and half["psi"] == 0.5
