"""Denoising curves: the posterior mean between the oracle and the network steps; the network steps' formula; the
command."""
import json

import pytest
import torch

from srr.analysis.denoising import aot_step, true_mssa
from srr.cli import main
from srr.principles import low_rank_mixture, mse_curves, network_denoisers
from srr.principles.denoising import best_combination

pytestmark = pytest.mark.usefixtures("one_thread")


def test_posterior_mean_lies_between_the_oracle_and_the_network_steps():
    mix = low_rank_mixture(4, 16, 2, seed=0)
    rows = mse_curves(mix, [0.2, 0.5, 1.0], samples=1024, tokens=32, generator=torch.Generator().manual_seed(0))
    for row in rows:
        m = row["methods"]
        assert m["oracle"]["mse"] < m["posterior"]["mse"] < m["mssa"]["mse"] < m["noisy"]["mse"], row["sigma"]
        assert m["posterior"]["mse"] < m["attention_only"]["mse"]
        assert m["mssa"]["mse"] <= m["mssa"]["mse_step"]  # the fitted combination is at least the literal step
        assert row["ratios"]["mssa_over_posterior"] == pytest.approx(m["mssa"]["mse"] / m["posterior"]["mse"])
    assert rows[0]["rates"]["noisy"]["R"] > rows[0]["rates"]["posterior"]["R"]  # denoising lowers the rate


def test_network_steps_are_the_attention_formula():
    mix = low_rank_mixture(3, 8, 2, seed=1)
    _, y, _ = mix.sample(20, 0.3, torch.Generator().manual_seed(1))
    out = network_denoisers(y, mix, tokens=10)
    z = y.float().view(2, 10, 8)
    for name, beta in (("mssa", 2**-0.5), ("attention_only", 1.0)):
        expected = sum(torch.softmax(beta * (z @ u) @ (z @ u).mT, -1) @ (z @ u) @ u.T for u in mix.bases.float())
        torch.testing.assert_close(out[name].float().view(2, 10, 8), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(aot_step(z, true_mssa(list(mix.bases.float())), 0.5, 1.0),
                               z + 0.5 * out["attention_only"].float().view(2, 10, 8), atol=1e-5, rtol=1e-5)


def test_best_combination_recovers_known_coefficients():
    g = torch.Generator().manual_seed(0)
    y, a = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)
    assert best_combination(y, a, 2 * y - 0.5 * a) == pytest.approx((2.0, -0.5), abs=1e-6)


@pytest.mark.slow
def test_denoise_command_writes_json_and_plots(tmp_path, capsys):
    out = tmp_path / "den"
    assert main(["denoise", "--out", str(out), "--samples", "128", "--levels", "3", "--sampler-samples", "200",
                 "--sampler-steps", "20", "--k", "3", "--d", "8"]) == 0
    shown = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert shown == {"denoise.json", "mse.png", "rates.png", "sampler.png"}
    report = json.loads((out / "denoise.json").read_text())
    assert [round(r["sigma"], 6) for r in report["mse"]] == [0.05, round((0.05 * 3.0) ** 0.5, 6), 3.0]
    assert len(report["sampler"]["shares"]) == 3 and report["settings"]["d"] == 8
    assert "sampler: 200 samples" in capsys.readouterr().out
    assert main(["denoise", "--out", str(tmp_path / "x"), "--rank", "20"]) == 2
    assert main(["denoise", "--out", str(tmp_path / "x"), "--tokens", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["srr denoise: error: rank 2 exceeds d = 16".replace("2 exceeds", "20 exceeds"),
                   "srr denoise: error: --tokens must lie in [1, 4096], got 0"]
    assert not (tmp_path / "x").exists()
