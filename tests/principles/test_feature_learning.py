"""Feature learning: tight-frame statistics exact where G ∝ I and G ∝ W Wᵀ hold by construction, the centred
gradient covariance, the kernel AGOP against autograd, and a Recursive Feature Machine finding the relevant input."""
import pytest
import torch
from torch import nn

from srr.analysis.ansatz import gradient_moments
from srr.principles import kernel_agop, laplace_kernel, layer_alignment, rfm, whitened_frame

pytestmark = pytest.mark.usefixtures("one_thread")


class TwoMaps(nn.Module):
    """f(h) = A W h with A = Wᵀ: the gradient of f_c at p = W h is Aᵀ e_c, so G = Aᵀ A = W Wᵀ exactly."""

    def __init__(self, d=6, k=4):
        super().__init__()
        self.w = nn.Linear(d, k, bias=False)
        self.a = nn.Linear(k, d, bias=False)
        with torch.no_grad():
            self.a.weight.copy_(self.w.weight.T)

    def forward(self, h):
        return self.a(self.w(h))


def test_tight_frame_statistics_are_exact_where_g_is_the_identity():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(7, 5, bias=False), nn.ReLU(), nn.Linear(5, 3, bias=False)).double()
    rows = {r["name"]: r for r in layer_alignment(net, torch.randn(30, 7, dtype=torch.float64))}
    head = rows["2.weight"]  # the gradient of logit c at the logits is e_c: G = (1/n) Σ_x Σ_c e_c e_cᵀ = I
    assert head["identity"]["frame_distance_normalised"] == pytest.approx(0.0, abs=1e-12)
    assert head["identity"]["eig_ratio"] == pytest.approx(1.0, abs=1e-12)
    assert head["identity"]["distance"] == pytest.approx(0.0, abs=1e-12)
    assert head["ansatz"]["1.0"] == pytest.approx(1.0, abs=1e-12)  # AGOP = Wᵀ I W = WᵀW
    assert head["left"]["1.0"] is None  # constant gradients: no covariance
    hidden = rows["0.weight"]
    assert 0.05 < hidden["identity"]["frame_distance_normalised"] < 1  # a ReLU layer is not a tight frame


def test_statistics_of_g_proportional_to_w_wt_are_exact():
    torch.manual_seed(1)
    net = TwoMaps().double()
    rows = {r["name"]: r for r in layer_alignment(net, torch.randn(20, 6, dtype=torch.float64))}
    w = rows["w.weight"]
    assert w["wwt"]["frame_distance_normalised"] == pytest.approx(0.0, abs=1e-9)
    assert w["wwt"]["eig_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert w["wwt"]["distance"] == pytest.approx(0.0, abs=1e-12)
    wwt = net.w.weight.detach() @ net.w.weight.detach().T  # the distance from I/k is that of W Wᵀ, by hand
    by_hand = float(torch.linalg.matrix_norm(wwt / torch.trace(wwt) - torch.eye(4, dtype=torch.float64) / 4))
    assert w["identity"]["distance"] == pytest.approx(by_hand, rel=1e-9)
    assert w["wwt"]["corr"] == pytest.approx(1.0, abs=1e-12)
    assert w["wwt"]["outside_range"] == pytest.approx(0, abs=1e-12)
    assert w["ansatz"]["0.5"] == pytest.approx(1.0, abs=1e-9)  # AGOP = (WᵀW)², its square root is WᵀW
    assert w["identity"]["eig_ratio"] < 0.9  # and G is not ∝ I


def test_whitened_frame_on_the_range_of_a_wide_map():
    torch.manual_seed(2)
    W = torch.randn(5, 3, dtype=torch.float64)  # rank 3 in R^5
    inside = W @ W.T
    normal = torch.linalg.svd(W)[0][:, 3:]  # the two directions outside the range of W
    G = 2.0 * inside + normal @ normal.T
    stats = whitened_frame(G, W)
    assert stats["rank"] == 3 and stats["eig_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert stats["outside_range"] == pytest.approx(2.0 / float(torch.trace(G)), abs=1e-12)


def test_centred_covariance_of_the_gradients():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 6, bias=False), nn.Tanh(), nn.Linear(6, 2, bias=False)).double()
    x = torch.randn(9, 4, dtype=torch.float64)
    moments = gradient_moments(net, x, batch_size=4)["0.weight"]
    per = []  # per sample and output: ∂f_c/∂p at the first map's output, by autograd one sample at a time
    for xi in x:
        p = net[0](xi).detach().requires_grad_(True)
        out = net[2](net[1](p))
        per.append(torch.stack([torch.autograd.grad(out[c], p, retain_graph=True)[0] for c in range(2)]))
    g = torch.stack(per)  # (n, c, k)
    G = torch.einsum("nck,ncl->kl", g, g) / 9
    centred = g - g.mean(0, keepdim=True)
    C = torch.einsum("nck,ncl->kl", centred, centred) / 9
    torch.testing.assert_close(moments["G"], G)
    torch.testing.assert_close(moments["C"], C)


def test_kernel_agop_is_the_autograd_agop():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(25, 4, generator=g, dtype=torch.float64)
    alpha = torch.randn(25, 3, generator=g, dtype=torch.float64)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    M = a @ a.T / 4
    x = torch.randn(8, 4, generator=g, dtype=torch.float64).requires_grad_(True)
    f = laplace_kernel(x, centers, M, 1.5) @ alpha
    grads = [torch.autograd.grad(f[:, c].sum(), x, retain_graph=True)[0] for c in range(3)]
    expected = sum(gr.T @ gr for gr in grads) / 8
    torch.testing.assert_close(kernel_agop(x.detach(), centers, alpha, M, 1.5, batch_size=3), expected)


def test_rfm_finds_the_one_coordinate_the_target_depends_on():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g, dtype=torch.float64)
    y = torch.sin(2 * x[:, :1])
    xt = torch.randn(200, 8, generator=g, dtype=torch.float64)
    model = rfm(x, y, iterations=3, bandwidth=5.0, reg=1e-3, x_test=xt, y_test=torch.sin(2 * xt[:, :1]))
    diag = torch.diagonal(model.M)
    assert float(diag[0] / diag.sum()) > 0.9
    mse = [row["test_mse"] for row in model.history]
    assert mse[-1] < 0.5 * mse[0]  # learning the metric helps
    torch.testing.assert_close(model.predict(x[:3]), laplace_kernel(x[:3], x, model.M, 5.0) @ model.alpha)


def test_rfm_agrees_with_xrfm_when_it_is_installed():
    """srr's few lines against the maintained package (not a dependency: ``pip install xrfm`` to run this check)."""
    xrfm = pytest.importorskip("xrfm")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 5, generator=g, dtype=torch.float64)
    y = (x[:, 0] * x[:, 1] > 0).long()
    targets = torch.nn.functional.one_hot(y, 2).double()
    theirs = xrfm.RFM(kernel="laplace", iters=2, bandwidth=4.0, device="cpu", verbose=False)
    theirs.fit((x, targets), (x[:20], targets[:20]), reg=1e-3, early_stop_rfm=False, return_best_params=False, iters=2)
    mine = rfm(x, y, iterations=2, bandwidth=4.0, reg=1e-3)
    torch.testing.assert_close(mine.M, theirs.M.double(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(mine.predict(x[:10]), theirs.predict(x[:10]).double(), atol=1e-5, rtol=1e-5)


def test_ansatz_of_the_weight_change():
    torch.manual_seed(4)
    init = nn.Sequential(nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False)).double()
    model = doubled_first_weight(init)
    row = layer_alignment(model, torch.randn(16, 5, dtype=torch.float64), init=init)[0]
    assert row["ansatz_minus_init"]["1.0"] == pytest.approx(row["ansatz"]["1.0"], abs=1e-12)  # W − W₀ = W here


def doubled_first_weight(init):
    """A copy of ``init`` whose first weight is the initial one doubled, so W − W₀ = W₀ and (W−W₀)ᵀ(W−W₀) ∝ WᵀW."""
    import copy

    model = copy.deepcopy(init)
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    return model
