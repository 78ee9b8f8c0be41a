"""Causal language models: causality of every family, causal TSSA against a prefix-by-prefix computation, no N × N
tensor in TSSA, sizes, tied weights through save/load, sampling."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import srr
from srr.errors import ConfigError, DataError
from srr.models import CausalTransformer, list_models, sample_next
from srr.operators import CausalTSSA

FAMILIES = ["gpt", "crate_gpt", "aot_gpt", "tost_gpt"]
TINY = {"dim": 16, "depth": 2, "heads": 2, "context": 16}


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


SIZES = ("nano", "small", "base")


def tiny(family: str) -> CausalTransformer:
    return srr.create_model(f"{family}_nano", **TINY).eval()


def test_every_language_model_is_registered_as_lm():
    names = list_models(task="lm")
    assert {f"{f}_{s}" for f in FAMILIES for s in SIZES} <= set(names)
    assert "crate_nano" not in names


@pytest.mark.parametrize("family", FAMILIES)
def test_future_tokens_never_change_past_outputs(family):
    model = tiny(family)
    ids = torch.randint(0, 256, (2, 16))
    t = 6
    changed = ids.clone()
    changed[:, t + 1:] = torch.randint(0, 256, (2, 16 - t - 1))
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert a.shape == (2, 16, 256)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-6, rtol=0)
    assert (a[:, t + 1:] - b[:, t + 1:]).abs().max() > 1e-4  # the later positions do see the change
    # the same, exactly, through the gradient: outputs at positions <= t do not depend on embeddings after t
    x = model.embed(ids).detach().requires_grad_(True)
    model.encode(x)[:, : t + 1].sum().backward()
    assert x.grad[:, t + 1:].abs().max() == 0
    assert x.grad[:, : t + 1].abs().max() > 0


def _prefix_reference(w, temp, bias):
    """Causal TSSA outputs (B, K, N, p) computed prefix by prefix, in float64, with explicit loops."""
    w = w.double()
    b, k, n, p = w.shape
    pi = torch.empty(b, k, n, dtype=torch.float64)
    for t in range(n):
        prefix = F.normalize(w[:, :, : t + 1], dim=-2)  # each coordinate normalised over tokens 0..t
        score = (prefix[:, :, t] ** 2).sum(-1) + bias.double()[:, t, 0]
        pi[:, :, t] = torch.softmax(score * temp.double()[:, 0], dim=1)
    out = torch.empty_like(w)
    for t in range(n):
        weights = pi[:, :, : t + 1]
        moment = (weights.unsqueeze(-1) * w[:, :, : t + 1] ** 2).sum(-2) / weights.sum(-1, keepdim=True)
        out[:, :, t] = -pi[:, :, t, None] * w[:, :, t] / (1 + moment)
    return out


def test_causal_tssa_equals_prefix_by_prefix_statistics():
    op = CausalTSSA(dim=12, heads=3, dim_head=4, context=20)
    with torch.no_grad():
        op.temp.copy_(torch.rand(3, 1) * 2 + 0.2)
        op.denom_bias.normal_()
    x = torch.randn(2, 20, 12)
    w = op.project(x)
    expected = _prefix_reference(w, op.temp, op.denom_bias)
    expected = expected.transpose(1, 2).reshape(2, 20, 12).float()
    assert torch.allclose(op.mix(x), expected, atol=1e-5, rtol=0)
    assert torch.allclose(op(x), op.to_out(expected), atol=1e-5, rtol=0)
    # membership is a distribution over heads for every token
    pi, s = op.statistics(w)
    assert torch.allclose(pi.sum(1), torch.ones(2, 20), atol=1e-6) and (s >= 0).all()


def test_causal_tssa_rejects_sequences_longer_than_its_context():
    with pytest.raises(DataError, match="at most 8 tokens"):
        CausalTSSA(8, 2, 4, context=8)(torch.randn(1, 9, 8))


class _LargestTensor(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_causal_tssa_forms_no_n_by_n_tensor():
    n, d = 4096, 32
    op = CausalTSSA(d, heads=4, dim_head=8, context=n)
    x = torch.randn(1, n, d, requires_grad=True)
    with _LargestTensor() as probe:
        op(x).sum().backward()
    assert probe.largest <= 4 * n * d < n * n  # every intermediate is O(N·d); N² would be 16.8M elements


def test_named_sizes_have_equalish_parameter_counts():
    for size in SIZES:
        with torch.device("meta"):
            counts = {f: srr.count_parameters(srr.create_model(f"{f}_{size}")) for f in FAMILIES}
        ratios = {f: c / counts["gpt"] for f, c in counts.items()}
        assert all(0.95 <= r <= 1.1 for r in ratios.values()), (size, counts)
    with torch.device("meta"):
        assert srr.count_parameters(srr.create_model("gpt_nano")) == 842_496


def test_tied_head_survives_save_and_load(tmp_path):
    model = tiny("crate_gpt")
    assert model.lm_head.weight is model.wte.weight
    model.save_pretrained(tmp_path / "m")
    loaded = srr.from_pretrained(tmp_path / "m").eval()
    assert loaded.lm_head.weight is loaded.wte.weight
    ids = torch.randint(0, 256, (1, 16))
    with torch.no_grad():
        assert torch.equal(model(ids), loaded(ids))
    assert srr.count_parameters(model) == srr.count_parameters(loaded)


def test_model_input_checks():
    model = tiny("gpt")
    with pytest.raises(DataError, match="exceed the context of 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(DataError, match=r"in \[0, 256\)"):
        model(torch.full((1, 4), 256))
    with pytest.raises(DataError, match="integer token ids"):
        model(torch.zeros(1, 4))
    with pytest.raises(ConfigError, match=r"gpt_nano: depth must lie in \[1, 4096\], got 0"):
        srr.create_model("gpt_nano", depth=0)


def test_sampling_rules():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 0.0]])
    assert sample_next(logits, temperature=0).flatten().tolist() == [1, 0]
    g = torch.Generator().manual_seed(0)
    draws = sample_next(logits[:1].expand(400, -1), 1.0, top_k=2, generator=g).flatten()
    assert set(draws.tolist()) == {1, 3}  # only the two largest logits are ever drawn
    p3 = (draws == 3).float().mean().item()
    assert abs(p3 - 1 / (1 + math.e)) < 0.1  # softmax over {3, 2}: P(index 3) = 1/(1+e)
    assert sample_next(logits, 1.0, top_k=1).flatten().tolist() == [1, 0]
    with pytest.raises(ConfigError, match="temperature"):
        sample_next(logits, -1.0)
    with pytest.raises(ConfigError, match="top-k"):
        sample_next(logits, 1.0, top_k=0)


def test_generate_keeps_the_context_window():
    model = tiny("aot_gpt")
    out = model.generate(torch.randint(0, 256, (1, 10)), 20, temperature=0)
    assert out.shape == (1, 30)  # longer than the context of 16: the model saw the last 16 tokens each step
    with torch.no_grad():
        assert out[0, -1].item() == model(out[:, -17:-1])[0, -1].argmax().item()


def test_initialisation_follows_each_family():
    gpt, crate = srr.create_model("gpt_nano"), srr.create_model("crate_gpt_nano")
    assert gpt.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert gpt.blocks[0].mlp.fc2.weight.std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    qkv = crate.transformer.layers[0][0].fn.qkv.weight  # PyTorch's default: U(±1/√fan_in), std 1/√(3·256)
    assert qkv.std().item() == pytest.approx(1 / math.sqrt(3 * 256), rel=0.05)
    for m in (gpt, crate):
        assert m.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
