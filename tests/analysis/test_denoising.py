"""Denoising instruments on synthetic subspaces: the SNR measurement, the AoT layer formula, the command."""
import json
import math

import pytest
import torch

from srr.analysis.denoising import aot_layers, aot_step, crate_layers, denoising_curves, snr, true_mssa
from srr.cli import main
from srr.data import token_sets

pytestmark = pytest.mark.usefixtures("one_thread")


def test_snr_of_a_known_split_and_of_noise_free_tokens():
    z, labels, bases, signal = token_sets(batch=2, tokens=16, k=2, d=8, rank=2, noise=0.0, seed=1)
    clean = snr(signal, labels, bases)
    assert clean["noise_free"] and math.isinf(clean["snr"])
    # add noise orthogonal to every subspace with exactly a quarter of the signal energy: SNR = 2
    comp = torch.linalg.qr(torch.cat([*bases, torch.randn(8, 4)], 1))[0][:, 4:]  # complement of both subspaces
    noise = torch.randn(2, 16, 4) @ comp.T
    noise = noise * (signal.pow(2).sum() / 4 / noise.pow(2).sum()).sqrt()
    out = snr(signal + noise, labels, bases)
    assert not out["noise_free"] and out["snr"] == pytest.approx(2.0, rel=1e-5)


def test_aot_step_matches_the_formula():
    z, labels, bases, _ = token_sets(batch=3, tokens=10, k=3, d=12, rank=2, noise=0.3, seed=2)
    op = true_mssa(bases)
    eta, beta = 0.7, 2.0
    expected = z.clone()
    for u in bases:  # Z + η Σ_k softmax(β W_k W_kᵀ) W_k U_kᵀ, W_k = Z U_k
        w = z @ u
        expected = expected + eta * torch.softmax(beta * w @ w.mT, -1) @ w @ u.T
    torch.testing.assert_close(aot_step(z, op, eta, beta), expected, rtol=1e-5, atol=1e-5)
    # the hard threshold keeps noise-free tokens noise-free (a head sees zero coordinates of other classes' tokens)
    _, labels0, bases0, clean = token_sets(batch=2, tokens=12, k=3, d=12, rank=2, noise=0.0, seed=3)
    out = aot_step(clean, true_mssa(bases0), 0.5, 1.0, tau=0.1)
    assert snr(out, labels0, bases0)["noise_free"]
    layer = aot_layers(bases, depth=1, eta=eta)[0]._modules["0"]  # the registry's AoT block: η·MSSA(LN(Z)) through U
    normed = torch.nn.functional.layer_norm(z, (12,))
    expected = sum(eta * torch.softmax((normed @ u) @ (normed @ u).mT / 2**0.5, -1) @ (normed @ u) @ u.T for u in bases)
    with torch.no_grad():
        torch.testing.assert_close(layer(z), expected, rtol=1e-5, atol=1e-5)
    net = crate_layers(bases, depth=2)
    assert torch.equal(net[1]._modules["1"].fn.weight, torch.eye(12))


def test_denoising_curves_and_command(tmp_path, capsys):
    z, labels, bases, _ = token_sets(batch=2, tokens=16, k=2, d=8, rank=2, noise=0.4, seed=0)
    result = denoising_curves(z, labels, bases, depth=2, eta=0.5, tau=0.1)
    assert result["predicted_ratio"] == pytest.approx(1.05)
    assert set(result["curves"]) == {"aot_softmax", "aot_threshold", "aot_layernorm", "crate"}
    rows = result["curves"]["aot_threshold"]
    assert [r["layer"] for r in rows] == [0, 1, 2] and rows[0]["ratio"] is None
    assert rows[1]["ratio"] == pytest.approx(rows[1]["snr"] / rows[0]["snr"])
    assert all(r["rc_classes"] > 0 and r["rc_subspaces"] > 0 for r in rows)
    out = tmp_path / "syn"
    assert main(["synthetic", "--out", str(out), "--noise", "0", "--depth", "2", "--sets", "2", "--tokens", "16",
                 "--tau", "0.1"]) == 0  # τ above the uniform weight 1/16: attention to zero coordinates is cut
    report = json.loads((out / "synthetic.json").read_text())
    assert report["curves"]["aot_threshold"][2]["snr"] == "inf" and report["curves"]["crate"][0]["noise_free"]
    assert (out / "synthetic.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["synthetic", "--out", str(out), "--tau", "2"]) == 2
    assert "0 < tau < 1" in capsys.readouterr().err
