"""CRATE against REFERENCE §2: parameter counts, the authors' key names, an independent forward, save/load."""
import pytest
import torch
import torch.nn.functional as F

import srr
from srr.errors import ConfigError, DataError
from srr.operators import ISTA, MSSA

PUBLISHED = {"crate_tiny": 6_090_856, "crate_small": 13_116_328, "crate_base": 22_796_008,
             "crate_large": 77_641_192}


@pytest.mark.parametrize("name,count", PUBLISHED.items())
def test_parameter_counts_match_reference(name, count):
    with torch.device("meta"):
        model = srr.create_model(name, num_classes=1000, image_size=224, patch_size=16)
    assert srr.count_parameters(model) == count


def authors_state_dict(dim, depth, heads, dim_head, patch_dim, n_tokens, classes):
    """Random tensors under the key names of the authors' checkpoints (REFERENCE §2)."""
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    sd = {
        "to_patch_embedding.1.weight": 1 + r(patch_dim), "to_patch_embedding.1.bias": r(patch_dim),
        "to_patch_embedding.2.weight": r(dim, patch_dim), "to_patch_embedding.2.bias": r(dim),
        "to_patch_embedding.3.weight": 1 + r(dim), "to_patch_embedding.3.bias": r(dim),
        "pos_embedding": r(1, n_tokens, dim), "cls_token": r(1, 1, dim),
        "mlp_head.0.weight": 1 + r(dim), "mlp_head.0.bias": r(dim),
        "mlp_head.1.weight": r(classes, dim), "mlp_head.1.bias": r(classes),
    }
    for i in range(depth):
        p = f"transformer.layers.{i}."
        sd.update({
            p + "0.norm.weight": 1 + r(dim), p + "0.norm.bias": r(dim),
            p + "0.fn.qkv.weight": r(heads * dim_head, dim),
            p + "0.fn.to_out.0.weight": r(dim, heads * dim_head), p + "0.fn.to_out.0.bias": r(dim),
            p + "1.norm.weight": 1 + r(dim), p + "1.norm.bias": r(dim),
            p + "1.fn.weight": r(dim, dim),
        })
    return sd


def reference_forward(sd, img, patch, heads, depth, eta=0.1, lam=0.1, pool="cls"):
    """An independent transcription of REFERENCE §2 working directly on the state dict."""
    b, c, h, w = img.shape
    x = img.reshape(b, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)  # (p1 p2 c)
    ln = lambda t, k: F.layer_norm(t, t.shape[-1:], sd[k + ".weight"], sd[k + ".bias"])  # noqa: E731
    x = ln(x, "to_patch_embedding.1")
    x = x @ sd["to_patch_embedding.2.weight"].T + sd["to_patch_embedding.2.bias"]
    x = ln(x, "to_patch_embedding.3")
    x = torch.cat([sd["cls_token"].expand(b, 1, -1), x], 1) + sd["pos_embedding"]
    for i in range(depth):
        p = f"transformer.layers.{i}."
        y = ln(x, p + "0.norm")
        wq = sd[p + "0.fn.qkv.weight"]
        dh = wq.shape[0] // heads
        outs = []
        for k in range(heads):
            wk = y @ wq[k * dh:(k + 1) * dh].T
            attn = torch.softmax(wk @ wk.transpose(1, 2) * dh**-0.5, dim=-1)
            outs.append(attn @ wk)
        z = torch.cat(outs, -1) @ sd[p + "0.fn.to_out.0.weight"].T + sd[p + "0.fn.to_out.0.bias"] + x
        y = ln(z, p + "1.norm")
        W = sd[p + "1.fn.weight"]
        x = torch.relu(y + eta * (y @ W - (y @ W.T) @ W) - eta * lam)  # three products, as written in §2
    x = x[:, 0] if pool == "cls" else x.mean(1)
    x = ln(x, "mlp_head.0")
    return x @ sd["mlp_head.1.weight"].T + sd["mlp_head.1.bias"]


@pytest.mark.parametrize("channels,image,patch,pool", [(3, 16, 4, "cls"), (1, 8, 2, "mean")])
def test_authors_state_dict_loads_strictly_and_forward_matches(channels, image, patch, pool):
    dim, depth, heads, dh, classes = 24, 2, 3, 8, 5
    n = (image // patch) ** 2 + 1
    sd = authors_state_dict(dim, depth, heads, dh, patch * patch * channels, n, classes)
    model = srr.create_model("crate_tiny", image_size=image, patch_size=patch, channels=channels, dim=dim,
                             depth=depth, heads=heads, dim_head=dh, num_classes=classes, pool=pool)
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(model.state_dict()) == set(sd)
    img = torch.randn(4, channels, image, image)
    expected = reference_forward(sd, img, patch, heads, depth, pool=pool)
    assert torch.allclose(model.eval()(img), expected, atol=1e-5)


def test_ista_two_products_equal_three():
    ista = ISTA(16)
    x = torch.randn(5, 7, 16)
    W = ista.weight
    three = torch.relu(x + 0.1 * (x @ W - (x @ W.T) @ W) - 0.01)
    assert torch.allclose(ista(x), three, atol=1e-6)
    assert (ista(x) >= 0).all()


def test_mssa_fused_equals_explicit_softmax_and_causal_mask():
    for causal in (False, True):
        m = MSSA(12, heads=3, dim_head=4, causal=causal)
        x = torch.randn(2, 6, 12)
        attn = m.attention(x)
        w = m.project(x)
        explicit = (attn @ w).transpose(1, 2).reshape(2, 6, 12)
        assert torch.allclose(m(x), m.to_out(explicit), atol=1e-6)
        assert torch.allclose(attn.sum(-1), torch.ones(2, 3, 6), atol=1e-6)
        if causal:
            assert float(attn[..., 0, 1:].detach().abs().max()) == 0.0


def test_save_pretrained_round_trip_is_exact(tmp_path):
    model = srr.create_model("crate_nano", depth=2, dim=32)
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "config.json").is_file() and (tmp_path / "m" / "model.safetensors").is_file()
    loaded = srr.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model.eval()(x), loaded.eval()(x))
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert type(loaded).from_pretrained(tmp_path / "m").config == model.config


def test_rectangular_images_and_any_channel_count():
    model = srr.create_model("crate_nano", image_size=[6, 10], patch_size=[3, 5], channels=5, dim=16, heads=2,
                             depth=1)
    assert model(torch.randn(2, 5, 6, 10)).shape == (2, 10)
    assert model.pos_embedding.shape == (1, 2 * 2 + 1, 16)


def test_bad_configurations_are_refused_clearly():
    with pytest.raises(ConfigError, match="single value"):
        srr.create_model("crate_nano", patch_size=1, channels=1)
    with pytest.raises(ConfigError, match="not divisible"):
        srr.create_model("crate_nano", patch_size=3)
    with pytest.raises(ConfigError, match="unknown model 'crate_tinny'.*crate_tiny"):
        srr.create_model("crate_tinny")
    with pytest.raises(ConfigError, match="no option.*'width'"):
        srr.create_model("crate_nano", width=3)
    model = srr.create_model("crate_nano")
    with pytest.raises(DataError, match=r"expects images of shape \(batch, 1, 8, 8\), got \(2, 3, 8, 8\)"):
        model(torch.randn(2, 3, 8, 8))


def test_trace_and_subspaces_are_consistent_with_forward():
    model = srr.create_model("crate_nano", depth=3).eval()
    x = torch.randn(2, 1, 8, 8)
    records = model.trace(x)
    assert len(records) == 3 and len(model.subspaces()) == 3
    assert torch.allclose(records[-1]["output"], model.forward_features(x))
    assert model.subspaces()[0].shape == (4, 96, 24)
    maps = model.attention_maps(x)
    assert maps[0].shape == (2, 4, 17, 17)
