"""The logit lens ends at the model's own output; recording, patching and ablating heads by name act exactly as the
same computation written out by hand."""
import math

import pytest
import torch
import torch.nn.functional as F

import srr
from srr.circuits import (ablate_heads, head_ablation_table, hook_names, lens_logits, logit_lens, model_loss, patch,
                          record, replace_head)
from srr.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL_LM = {"dim": 16, "depth": 2, "heads": 2, "context": 12, "vocab_size": 20}


@pytest.mark.parametrize("name", ["gpt_nano", "aot_gpt_nano", "crate_nano", "tost_nano"])
def test_the_lens_at_the_last_layer_is_the_model_output(name):
    model = srr.create_model(name, **(SMALL_LM if "gpt" in name else {})).eval()
    x = torch.randint(0, 20, (3, 12)) if "gpt" in name else torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        out = model(x)
    layers = lens_logits(model, x)
    assert len(layers) == model.depth
    torch.testing.assert_close(layers[-1], out, rtol=0, atol=0)
    rows = logit_lens(model, x, None if "gpt" in name else torch.tensor([1, 2, 3]))
    assert rows[-1]["kl_to_final"] == 0.0
    goal = x[:, 1:] if "gpt" in name else torch.tensor([1, 2, 3])
    final = out[:, :-1] if "gpt" in name else out
    assert rows[-1]["accuracy"] == pytest.approx(float((final.argmax(-1) == goal).double().mean()))
    first = layers[0].double()[:, :-1] if "gpt" in name else layers[0].double()
    kl = F.kl_div(F.log_softmax(first, -1), F.log_softmax(final.double(), -1), log_target=True, reduction="none")
    assert rows[0]["kl_to_final"] == pytest.approx(float(kl.sum(-1).mean()), rel=1e-9)


def test_a_classifier_lens_without_labels_scores_agreement_with_the_final_prediction():
    model = srr.create_model("vit_nano").eval()
    rows = logit_lens(model, torch.randn(4, 1, 8, 8))
    assert rows[-1]["accuracy"] == 1.0 and 0.0 <= rows[0]["accuracy"] <= 1.0


@pytest.mark.parametrize("name", ["gpt_nano", "crate_gpt_nano"])
def test_ablating_a_head_removes_exactly_its_term(name):
    model = srr.create_model(name, **SMALL_LM).eval()
    ids = torch.randint(0, 20, (2, 12))
    with record(model, ["1.input", "1.heads", "1.attn_output"]) as acts, torch.no_grad():
        clean = model(ids)
    with ablate_heads(model, [(1, 1)]), torch.no_grad():
        ablated = model(ids)
    block = model.block_list[1]
    out_matrix = block.attention.proj.weight if name == "gpt_nano" else block.attention.to_out[0].weight
    p = block.attention.dim_head
    term = acts["1.heads"][..., p:2 * p] @ out_matrix[:, p:2 * p].T  # head 1's write W_O^1 · out_1
    with torch.no_grad():
        by_hand = model.forward_head(block.update(acts["1.input"] + acts["1.attn_output"] - term))
    torch.testing.assert_close(ablated, by_hand, rtol=1e-5, atol=1e-5)
    assert (ablated - clean).abs().max() > 1e-4
    with torch.no_grad():  # the hooks are gone after the block
        torch.testing.assert_close(model(ids), clean, rtol=0, atol=0)


def test_replacing_a_head_and_patching_by_name():
    model = srr.create_model("gpt_nano", **SMALL_LM).eval()
    ids = torch.randint(0, 20, (2, 12))
    with ablate_heads(model, [(0, 0)]), torch.no_grad():
        zeroed = model(ids)
    with replace_head(model, 0, 0, torch.zeros(2, 12, 8)), torch.no_grad():
        replaced = model(ids)
    torch.testing.assert_close(replaced, zeroed, rtol=0, atol=0)
    with patch(model, "1.attn_output", torch.zeros_like), torch.no_grad():
        no_attn = model(ids)
    with record(model, ["1.input"]) as acts, torch.no_grad():
        model(ids)
    block = model.block_list[1]
    with torch.no_grad():
        torch.testing.assert_close(no_attn, model.forward_head(block.update(acts["1.input"])))
    assert "1.pattern" in hook_names(model) and "0.heads" in hook_names(model)
    with pytest.raises(ConfigError, match="unknown activation"):
        with record(model, ["7.heads"]):
            pass
    with pytest.raises(ConfigError, match="replacement must be a tensor of shape"):
        with patch(model, "0.heads", lambda a: a[..., :2]), torch.no_grad():
            model(ids)
    with pytest.raises(ConfigError, match="head 5 is out of range"):
        with ablate_heads(model, [(0, 5)]):
            pass


def test_the_ablation_table_gives_each_heads_loss_change():
    model = srr.create_model("gpt_nano", **SMALL_LM).eval()
    ids = torch.randint(0, 20, (4, 12))
    table = head_ablation_table(model, ids)
    assert table["loss"] == pytest.approx(model_loss(model, ids)) and len(table["heads"]) == 4
    with ablate_heads(model, [(1, 0)]):
        expected = model_loss(model, ids)
    row = table["heads"][2]
    assert (row["layer"], row["head"]) == (1, 0)
    assert row["delta"] == pytest.approx(expected - table["loss"], abs=1e-12)
    assert table["loss"] == pytest.approx(math.log(20), rel=0.05)  # an untrained model is near the uniform loss
