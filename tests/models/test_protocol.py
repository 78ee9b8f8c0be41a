"""One model protocol: the same trace keys and hook points for every family, subspaces or head bases, configuration
dataclasses that are what config.json stores, registry entries that are plain functions, sizes checked before
anything is allocated."""
import inspect
import json

import pytest
import torch

import srr
from srr.errors import ConfigError, ResourceError
from srr.models.base import HOOKS
from srr.models.registry import get_entry

IMAGE = ["crate_nano", "crate_conceptual_nano", "crate_transpose_nano", "crate_alpha_nano", "aot_nano", "tost_nano", "vit_nano"]
CAUSAL = ["crate_gpt_nano", "aot_gpt_nano", "tost_gpt_nano", "gpt_nano"]
SMALL_LM = {"dim": 16, "depth": 2, "heads": 2, "context": 12}

pytestmark = pytest.mark.usefixtures("one_thread")


def model_and_input(name):
    torch.manual_seed(0)
    if name in CAUSAL:
        return srr.create_model(name, **SMALL_LM).eval(), torch.randint(0, 256, (2, 12))
    return srr.create_model(name).eval(), torch.randn(2, 1, 8, 8)


@pytest.mark.parametrize("name", IMAGE + CAUSAL)
def test_every_family_traces_the_same_keys_and_its_trace_is_the_forward(name):
    model, x = model_and_input(name)
    with torch.no_grad():
        records = model.trace(x)
        assert len(records) == model.depth == len(model.block_list)
        for rec, block in zip(records, model.block_list):
            assert set(HOOKS) <= set(rec)
            torch.testing.assert_close(rec["mid"], rec["input"] + rec["attn_output"])
            torch.testing.assert_close(rec["attn_input"], block.attention_norm(rec["input"]))
            torch.testing.assert_close(rec["output"], block(rec["input"]))
        torch.testing.assert_close(model.forward_head(records[-1]["output"]), model(x))
        for a, b in zip(records, records[1:]):
            assert torch.equal(a["output"], b["input"])


@pytest.mark.parametrize("name", ["crate_nano", "vit_nano", "gpt_nano"])
def test_a_hook_point_replaces_an_activation(name):
    model, x = model_and_input(name)
    block = model.block_list[0]
    handle = block.hook_attn_output.register_forward_hook(lambda m, i, out: torch.zeros_like(out))
    try:
        with torch.no_grad():
            patched = model(x)
    finally:
        handle.remove()
    with torch.no_grad():
        z = model.embed(x)
        z = block.update(z)  # the block without its attention: mid = input + 0
        for later in model.block_list[1:]:
            z = later(z)
        torch.testing.assert_close(patched, model.forward_head(z))
        assert not torch.allclose(patched, model(x))


def test_subspaces_of_tied_attention_and_orthonormal_bases_of_every_head():
    crate, vit = srr.create_model("crate_nano"), srr.create_model("vit_nano")
    u = crate.subspaces()
    assert len(u) == 4 and u[0].shape == (4, 96, 24)
    assert torch.equal(u[1][2].T, crate.transformer.layers[1][0].fn.qkv.weight[48:72])  # rows of head k are U_kᵀ
    assert vit.subspaces() is None  # queries, keys and values are separate projections
    for bases in (crate.head_bases(), vit.head_bases("value"), vit.head_bases("query")):
        eye = torch.eye(bases[0].shape[-1]).expand(bases[0].shape[0], -1, -1)
        torch.testing.assert_close(bases[0].mT @ bases[0], eye, atol=1e-5, rtol=0)
    w_v = vit.block_list[0].attn.qkv.weight[2 * 64:3 * 64][:16]  # head 0 of the value projection (p = 16)
    proj = vit.head_bases("value")[0][0]  # its basis spans the same rows
    torch.testing.assert_close(proj @ (proj.T @ w_v.T), w_v.T, atol=1e-5, rtol=1e-4)
    with pytest.raises(ConfigError, match="forms no token-by-token matrix"):
        srr.create_model("tost_nano").attention_maps(torch.randn(1, 1, 8, 8))


def test_config_json_is_the_configuration_dataclass(tmp_path):
    model = srr.create_model("crate_alpha_nano", dim=32, overcomplete_ratio=2)
    model.save_pretrained(tmp_path / "m", extra={"data": "digits"})
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["args"] == model.config.to_dict() and saved["task"] == "image" and saved["model"] == "crate_alpha_nano"
    assert type(model.config).__name__ == "CRATEAlphaImageConfig" and saved["args"]["overcomplete_ratio"] == 2
    back = srr.from_pretrained(tmp_path / "m")
    assert back.config == model.config
    (tmp_path / "m" / "config.json").write_text(json.dumps({**saved, "args": {**saved["args"], "dropout": 5.0}}))
    with pytest.raises(ConfigError, match=r"config.json: crate_alpha_nano: dropout must lie in \[0, 1\), got 5"):
        srr.from_pretrained(tmp_path / "m")


def test_registry_entries_are_plain_functions_found_by_their_name():
    names = srr.models.list_models()
    assert len(names) == 66  # 61 families × sizes + redunet + 2 official ToST + 2 LISTA
    for name in names:
        fn = get_entry(name).fn
        assert fn.__name__ == name and f"def {name}():" in inspect.getsource(inspect.getmodule(fn))
    assert srr.models.list_models("nano") == sorted(n for n in names if "nano" in n)  # a substring, or a pattern
    assert srr.models.list_models("crate_*e_nano") == ["crate_negative_nano", "crate_transpose_nano"]


def test_sizes_are_checked_before_anything_is_allocated(monkeypatch):
    with pytest.raises(ConfigError, match=r"dim must lie in \[1, 65536\], got 1000000000"):
        srr.create_model("crate_nano", dim=10**9)
    with pytest.raises(ConfigError, match=r"depth must lie in \[1, 4096\], got 1000000"):
        srr.create_model("crate_nano", depth=10**6)
    with pytest.raises(ResourceError, match=r"building gpt_nano \(its parameters\) needs about .* GiB, more than"):
        srr.create_model("gpt_nano", vocab_size=10**7, dim=8192)
    monkeypatch.setenv("SRR_MEMORY_LIMIT", str(50 * 2**20))  # a 50 MiB budget refuses crate_base (91 MB)
    with pytest.raises(ResourceError, match=r"building crate_base \(its parameters\) needs about 87.0 MiB"):
        srr.create_model("crate_base")
