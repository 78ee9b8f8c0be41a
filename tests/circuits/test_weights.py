"""Per-head circuit matrices: MSSA's W_QK is symmetric PSD, MHSA's is not; W_QK and W_OV reproduce the attention
pattern and each head's write computed from the activations of a forward pass."""
import pytest
import torch

import srr
from srr.circuits import head_weights, is_symmetric_psd, record, spectrum, symmetry_score
from srr.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL_LM = {"dim": 16, "depth": 2, "heads": 2, "context": 12, "vocab_size": 20}


@pytest.mark.parametrize("name", ["crate_nano", "aot_gpt_nano", "crate_alpha_nano", "crate_gpt_nano"])
def test_an_mssa_head_reads_through_a_symmetric_psd_matrix(name):
    model = srr.create_model(name, **(SMALL_LM if "gpt" in name else {}))
    for layer in head_weights(model):
        for h in layer:
            assert symmetry_score(h.qk) < 1e-14
            assert is_symmetric_psd(h.qk)
            values = spectrum(h.qk)
            assert values.imag.abs().max() < 1e-10 * values.abs().max()
            assert int((values.abs() > 1e-10 * values.abs().max()).sum()) == h.W_Q.shape[0]  # rank p


def test_a_gpt_head_reads_through_an_asymmetric_matrix_with_negative_eigenvalues():
    model = srr.create_model("gpt_nano", **SMALL_LM)
    for layer in head_weights(model):
        for h in layer:
            # two independent Gaussian factors: ‖M − Mᵀ‖/‖M‖ is near √2 (an antisymmetric matrix would give √2)
            assert 1.0 < symmetry_score(h.qk) < 1.6
            assert not is_symmetric_psd(h.qk)


def _ln_free(model):
    """LayerNorm weights set to random positive values (so that folding matters) and biases to 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.zero_()
            if hasattr(m, "qkv") and m.qkv.bias is not None:
                m.qkv.bias.zero_()
    return model


@pytest.mark.parametrize("name", ["gpt_nano", "crate_gpt_nano"])
def test_w_qk_gives_the_attention_pattern(name):
    model = _ln_free(srr.create_model(name, **SMALL_LM)).eval()
    ids = torch.randint(0, 20, (2, 12))
    with record(model, ["1.input", "1.pattern"]) as acts:
        model(ids)
    x = acts["1.input"].double()
    x_hat = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    for h in head_weights(model)[1]:
        scores = x_hat @ h.qk @ x_hat.transpose(1, 2) / h.W_Q.shape[0] ** 0.5
        scores = scores.masked_fill(torch.ones(12, 12, dtype=torch.bool).triu(1), float("-inf"))
        torch.testing.assert_close(scores.softmax(-1), acts["1.pattern"][:, h.head].double(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["gpt_nano", "crate_nano", "crate_conceptual_nano", "crate_negative_nano",
                                  "crate_transpose_nano", "aot_nano"])
def test_w_ov_gives_each_heads_write_into_the_residual_stream(name):
    model = srr.create_model(name, **(SMALL_LM if "gpt" in name else {})).eval()
    x_in = torch.randint(0, 20, (2, 12)) if "gpt" in name else torch.randn(2, 1, 8, 8)
    with record(model, ["0.attn_input", "0.pattern", "0.heads", "0.attn_output"]) as acts:
        model(x_in)
    a_in, pattern = acts["0.attn_input"].double(), acts["0.pattern"].double()
    heads = head_weights(model, fold_norm=False)[0]
    total = sum(pattern[:, h.head] @ a_in @ h.ov.T for h in heads)  # Σ_h A_h X W_OVᵀ
    attention = model.block_list[0].attention
    bias = getattr(getattr(attention, "proj", None), "bias", None)
    if bias is None and getattr(attention, "output", None) == "learned":
        bias = attention.to_out[0].bias
    if bias is not None:
        total = total + bias.double()
    torch.testing.assert_close(total, acts["0.attn_output"].double(), atol=1e-5, rtol=1e-4)


def test_tssa_heads_have_no_qk_and_a_model_without_blocks_is_refused():
    heads = head_weights(srr.create_model("tost_nano"))
    assert all(h.qk is None and h.ov.shape == (56, 56) for layer in heads for h in layer)
    with pytest.raises(ConfigError, match="no transformer blocks"):
        head_weights(srr.create_model("mlp_nano"))


def test_the_low_rank_spectrum_is_the_non_zero_part_of_the_dense_one():
    from srr.circuits.weights import low_rank_spectrum

    h = head_weights(srr.create_model("gpt_nano", **SMALL_LM))[1][0]
    dense = spectrum(h.ov)
    small = low_rank_spectrum(*h.ov_factors)
    assert small.shape == (8,) and dense[8:].abs().max() < 1e-12 * dense.abs().max()
    torch.testing.assert_close(small.abs(), dense[:8].abs(), rtol=1e-9, atol=1e-15)
    torch.testing.assert_close(small.sum(), torch.trace(h.ov).to(small.dtype), rtol=1e-9, atol=1e-15)
