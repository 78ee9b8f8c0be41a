"""Composition scores: equal to the formula computed independently (NumPy, from the raw weights), a closed form for
projections, a random baseline that is reproducible and below the aligned value."""
import math

import numpy as np
import pytest
import torch

import srr
from srr.circuits import composition_score, composition_scores, head_weights, random_baseline
from srr.circuits.weights import HeadWeights
from srr.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_scores_of_a_gpt_equal_an_independent_computation():
    model = srr.create_model("gpt_nano", dim=16, depth=2, heads=2, context=12, vocab_size=20)
    rows = composition_scores(head_weights(model, fold_norm=False))
    assert len(rows) == 4  # 2 earlier heads x 2 later heads
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    p, d = 8, 16

    def mats(layer, head):
        w = sd[f"blocks.{layer}.attn.qkv.weight"]
        q, k, v = (w[i * d + head * p:i * d + (head + 1) * p] for i in range(3))
        o = sd[f"blocks.{layer}.attn.proj.weight"][:, head * p:(head + 1) * p]
        return q.T @ k, o @ v

    def fro(m):
        return math.sqrt(float(np.trace(m.T @ m)))

    for row in rows:
        _, ov1 = mats(*row["from"])
        qk2, ov2 = mats(*row["to"])
        assert row["q"] == pytest.approx(fro(qk2.T @ ov1) / (fro(qk2) * fro(ov1)), rel=1e-10)
        assert row["k"] == pytest.approx(fro(qk2 @ ov1) / (fro(qk2) * fro(ov1)), rel=1e-10)
        assert row["v"] == pytest.approx(fro(ov2 @ ov1) / (fro(ov2) * fro(ov1)), rel=1e-10)
        assert row["q"] != pytest.approx(row["k"], rel=1e-3)  # an asymmetric W_QK tells the two apart


def test_mssa_q_and_k_composition_coincide():
    rows = composition_scores(head_weights(srr.create_model("crate_nano")))
    assert len(rows) == 6 * 16  # 4 layers: 6 ordered layer pairs of 4 x 4 heads
    assert all(r["q"] == pytest.approx(r["k"], rel=1e-9) for r in rows)


def test_a_projection_composed_with_itself_scores_one_over_root_rank_and_an_orthogonal_one_zero():
    d, p = 12, 4
    e = torch.eye(d, dtype=torch.float64)
    first, second = e[:p], e[p:2 * p]  # two orthogonal p-dimensional coordinate subspaces, as p x d readers
    head = HeadWeights(0, 0, "mhsa", first, first, first, first.T)  # W_QK = W_OV = the projection P
    other = HeadWeights(1, 0, "mhsa", second, second, second, second.T)
    for kind in ("q", "k", "v"):
        assert composition_score(kind, head.ov, head.qk, head.ov) == pytest.approx(1 / math.sqrt(p), rel=1e-12)
        assert composition_score(kind, head.ov, other.qk, other.ov) == 0.0
    assert composition_score("k", torch.zeros(d, d, dtype=torch.float64), head.qk, head.ov) == 0.0  # not NaN
    with pytest.raises(ConfigError, match="composition kind"):
        composition_score("x", head.ov, head.qk, head.ov)


def test_the_random_baseline_is_reproducible_and_shrinks_with_the_width():
    a, b = random_baseline(64, 8, samples=10, seed=3), random_baseline(64, 8, samples=10, seed=3)
    assert a == b
    wide = random_baseline(256, 8, samples=10, seed=3)
    assert 0 < wide["k"] < a["k"] < 1 / math.sqrt(8)
