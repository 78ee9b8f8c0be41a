"""Feature ansatz: AGOP against brute-force Jacobians, the linear case, perfect tight frames, the command."""
import json

import pytest
import torch
from torch import nn
from torch.func import jacrev, vmap

import srr
from srr.analysis.ansatz import (ansatz_statistics, feature_ansatz, gradient_moments, matrix_power, pearson,
                                 tight_frame_statistics)
from srr.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_linear_model_agop_is_wtw_and_a_perfect_frame():
    model = srr.create_model("mlp_nano", depth=0)  # f(x) = W vec(x): ∂f_c/∂p = e_c, so G = Σ_c e_c e_cᵀ = I
    moments = gradient_moments(model, torch.randn(40, 1, 8, 8), batch_size=16)
    (name, m), = moments.items()
    assert name == "layers.0.weight" and m["samples"] == 40
    torch.testing.assert_close(m["G"], torch.eye(10, dtype=torch.float64))
    row = feature_ansatz(model, torch.randn(40, 1, 8, 8))[0]
    assert row["corr"]["1.0"] == pytest.approx(1.0, abs=1e-12)
    assert row["frame_distance"] == pytest.approx(0.0, abs=1e-12) and row["eig_ratio"] == pytest.approx(1.0)
    assert row["kind"] == "mlp"


def test_hidden_layer_agop_equals_brute_force_jacobians():
    model = srr.create_model("mlp_nano", width=12, depth=2).double()
    x = torch.randn(30, 1, 8, 8, dtype=torch.float64)
    w1, w2 = (layer.weight for layer in model.layers[1:])
    h1 = torch.relu(x.flatten(1) @ model.layers[0].weight.T)
    rest = lambda h: model.layers[2](torch.relu(h @ w1.T))  # noqa: E731  f as a function of layer 1's input h1
    jac = vmap(jacrev(rest))(h1)  # (n, c, d_in)
    agop = torch.einsum("nci,ncj->ij", jac, jac) / len(x)
    g = gradient_moments(model, x)["layers.1.weight"]["G"]
    torch.testing.assert_close(w1.detach().T @ g @ w1.detach(), agop.detach())
    assert not torch.allclose(agop, agop[0, 0] * torch.eye(12, dtype=agop.dtype))  # a non-trivial case
    assert w2.shape == (10, 12)


class _TokenNet(nn.Module):
    """tokens (B, N, d) → Linear → ReLU → mean over tokens → Linear: the gradient of every token is summed."""

    def __init__(self):
        super().__init__()
        self.inner, self.out = nn.Linear(5, 7), nn.Linear(7, 3)

    def forward(self, z):
        return self.out(torch.relu(self.inner(z)).mean(1))


def test_token_agop_sums_token_gradients():
    net = _TokenNet().double()
    z = torch.randn(9, 4, 5, dtype=torch.float64)
    jac = vmap(jacrev(lambda zi: net(zi[None])[0]))(z)  # (n, c, N, d): ∂f_c/∂z_t
    agop = torch.einsum("nctd,ncte->de", jac, jac) / len(z)
    g = gradient_moments(net, z)["inner.weight"]["G"]
    w = net.inner.weight.detach()
    torch.testing.assert_close(w.T @ g @ w, agop.detach())


def test_isotropic_gradients_form_a_perfect_tight_frame():
    k = 6
    grads = torch.cat([torch.eye(k), -torch.eye(k)]) * 3.0  # ± a scaled orthonormal basis: Σ g gᵀ ∝ I
    stats = tight_frame_statistics(grads.T @ grads / len(grads), torch.randn(k, 4))
    assert stats["frame_distance"] == pytest.approx(0.0, abs=1e-12)
    assert stats["eig_ratio"] == pytest.approx(1.0) and stats["frame_distance_normalised"] == pytest.approx(0.0)
    one = torch.zeros(k)
    one[2] = 1.0
    rank_one = tight_frame_statistics(torch.outer(one, one))
    assert rank_one["frame_distance_normalised"] == pytest.approx(1.0) and rank_one["eig_ratio"] == 0.0
    assert tight_frame_statistics(torch.zeros(k, k))["frame_distance"] is None


def test_power_half_ansatz_holds_when_g_is_proportional_to_wwt():
    w = torch.randn(5, 8, dtype=torch.float64)
    stats = ansatz_statistics(w, 2.0 * w @ w.T)  # AGOP = 2 (WᵀW)², so AGOP^½ ∝ WᵀW
    assert stats["corr_half"] == pytest.approx(1.0, abs=1e-9) and stats["corr_G_WWt"] == pytest.approx(1.0)
    assert stats["corr"]["1.0"] < 0.999
    m = torch.randn(6, 6, dtype=torch.float64)
    m = m @ m.T
    torch.testing.assert_close(matrix_power(m, 0.5) @ matrix_power(m, 0.5), m)
    assert pearson(torch.ones(3, 3), m[:3, :3]) is None


def test_crate_maps_are_all_found_and_classified():
    model = srr.create_model("crate_nano", dim=16, depth=2, heads=2)
    rows = feature_ansatz(model, torch.randn(12, 1, 8, 8), alphas=(0.5, 1.0))
    kinds = {r["name"]: r["kind"] for r in rows}
    assert kinds["transformer.layers.1.0.fn.qkv.weight"] == "attention"
    assert kinds["transformer.layers.1.1.fn.weight"] == "dictionary"
    assert kinds["transformer.layers.1.1.fn.weight.T"] == "dictionary"  # ISTA uses D and Dᵀ
    assert kinds["mlp_head.1.weight"] == "head" and len(rows) == 2 * 4 + 2
    head = next(r for r in rows if r["kind"] == "head")
    assert head["frame_distance"] == pytest.approx(0.0, abs=1e-9)  # the read-out's G is exactly I
    assert all(-1 <= r["corr_half"] <= 1 for r in rows)


def test_ansatz_cli(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--model", "mlp_nano", "--set", "width=32", "--epochs", "1", "--no-progress",
                 "--out", str(run_dir), "--seed", "4"]) == 0
    assert main(["ansatz", str(run_dir), "--samples", "64", "--no-progress", "--alphas", "1"]) == 0
    report = json.loads((run_dir / "ansatz" / "ansatz.json").read_text())
    assert set(report["results"]) == {"init", "trained"} and report["alphas"] == [0.5, 1.0]
    assert "seed 4" in report["init"] and len(report["results"]["trained"]) == 4
    from srr.analysis.runs import initial_copy, open_source  # the rebuilt initialisation is `srr train`'s start

    torch.manual_seed(4)
    first = srr.create_model("mlp_nano", image_size=8, channels=1, num_classes=10, width=32)
    rebuilt, how = initial_copy(open_source(str(run_dir)), seed=0)
    assert "training seed 4" in how
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), rebuilt.parameters()))
    assert (run_dir / "ansatz" / "ansatz.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["ansatz", "mlp_nano", "--alphas", "x"]) == 2
    assert "--alphas must be" in capsys.readouterr().err
