"""Converters of the authors' checkpoints: random weights saved in each source's own format, converted, and the srr
model's forward equal to a forward pass written here from the source code's structure (to 1e-5)."""
import argparse
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import srr
from srr.cli import main
from srr.errors import CheckpointError
from srr.interop.convert import convert, read_flax

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = dict(atol=1e-5, rtol=1e-5)


def rand(*shape, scale=0.2, g):
    return torch.randn(*shape, generator=g) * scale


def ln(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def heads_attention(w, heads):
    """softmax(q kᵀ/√p) v per head, q = k = v = w (the tied projection): (b, n, h·p) → (b, n, h·p)."""
    b, n, hd = w.shape
    p = hd // heads
    w = w.reshape(b, n, heads, p).transpose(1, 2)
    a = torch.softmax(w @ w.transpose(-1, -2) / math.sqrt(p), -1)
    return (a @ w).transpose(1, 2).reshape(b, n, hd)


# ---- CRATE (the authors' PyTorch code: to_patch_embedding, transformer.layers[i] = [PreNorm(attn), PreNorm(ista)])

def crate_source_state(g, dim=32, depth=2, heads=4, p=4, image=16, c=3, classes=5):
    n, pd = (image // p) ** 2, p * p * c
    sd = {"to_patch_embedding.1.weight": 1 + rand(pd, g=g), "to_patch_embedding.1.bias": rand(pd, g=g),
          "to_patch_embedding.2.weight": rand(dim, pd, g=g), "to_patch_embedding.2.bias": rand(dim, g=g),
          "to_patch_embedding.3.weight": 1 + rand(dim, g=g), "to_patch_embedding.3.bias": rand(dim, g=g),
          "pos_embedding": rand(1, n + 1, dim, g=g), "cls_token": rand(1, 1, dim, g=g),
          "mlp_head.0.weight": 1 + rand(dim, g=g), "mlp_head.0.bias": rand(dim, g=g),
          "mlp_head.1.weight": rand(classes, dim, g=g), "mlp_head.1.bias": rand(classes, g=g)}
    for i in range(depth):
        t = f"transformer.layers.{i}."
        sd.update({t + "0.norm.weight": 1 + rand(dim, g=g), t + "0.norm.bias": rand(dim, g=g),
                   t + "0.fn.qkv.weight": rand(dim, dim, g=g), t + "0.fn.to_out.0.weight": rand(dim, dim, g=g),
                   t + "0.fn.to_out.0.bias": rand(dim, g=g), t + "1.norm.weight": 1 + rand(dim, g=g),
                   t + "1.norm.bias": rand(dim, g=g), t + "1.fn.weight": rand(dim, dim, g=g)})
    return sd


def crate_source_forward(sd, x, heads, p, depth, eta=0.1, lam=0.1):
    b, c, h, w = x.shape
    t = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, p * p * c)
    t = ln(t, sd["to_patch_embedding.1.weight"], sd["to_patch_embedding.1.bias"], 1e-5)
    t = F.linear(t, sd["to_patch_embedding.2.weight"], sd["to_patch_embedding.2.bias"])
    t = ln(t, sd["to_patch_embedding.3.weight"], sd["to_patch_embedding.3.bias"], 1e-5)
    z = torch.cat([sd["cls_token"].expand(b, -1, -1), t], 1) + sd["pos_embedding"]
    for i in range(depth):
        q = f"transformer.layers.{i}."
        y = ln(z, sd[q + "0.norm.weight"], sd[q + "0.norm.bias"], 1e-5)
        y = heads_attention(F.linear(y, sd[q + "0.fn.qkv.weight"]), heads)
        z = F.linear(y, sd[q + "0.fn.to_out.0.weight"], sd[q + "0.fn.to_out.0.bias"]) + z
        y = ln(z, sd[q + "1.norm.weight"], sd[q + "1.norm.bias"], 1e-5)
        W = sd[q + "1.fn.weight"]
        grad = F.linear(y, W.t()) - F.linear(F.linear(y, W), W.t())  # x W − x Wᵀ W
        z = F.relu(y + eta * grad - eta * lam)  # no residual around ISTA
    return F.linear(ln(z[:, 0], sd["mlp_head.0.weight"], sd["mlp_head.0.bias"], 1e-5), sd["mlp_head.1.weight"],
                    sd["mlp_head.1.bias"])


def test_the_authors_crate_checkpoint_converts_exactly(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    sd = crate_source_state(g)
    ckpt = {"epoch": 7, "arch": "CRATE_tiny", "best_acc1": torch.tensor(41.5),
            "state_dict": {f"module.{k}": v for k, v in sd.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}
    torch.save(ckpt, tmp_path / "checkpoint.pth.tar")
    assert main(["convert", str(tmp_path / "checkpoint.pth.tar"), str(tmp_path / "crate"), "--set", "heads=4"]) == 0
    assert "crate" in capsys.readouterr().out
    model = srr.from_pretrained(tmp_path / "crate").eval()
    x = torch.randn(3, 3, 16, 16, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(model(x), crate_source_forward(sd, x, 4, 4, 2), **TOL)
    assert "Converted from `crate:checkpoint.pth.tar`" in (tmp_path / "crate" / "README.md").read_text()


def test_a_pickled_object_in_a_checkpoint_is_refused_without_running_it(tmp_path):
    torch.save({"state_dict": {}, "evil": argparse.ArgumentParser}, tmp_path / "bad.pth.tar")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint srr can read safely"):
        convert(tmp_path / "bad.pth.tar", tmp_path / "out", "crate")


# ---- CRATE-α (the authors' Flax code: embedding Conv, cls, pos_embedding, Transformer/encoderblock_i, head) ------

def crate_alpha_tree(g, dim=24, depth=2, p=4, image=16, c=3, classes=5, ratio=4):
    n = (image // p) ** 2
    tree = {"embedding/kernel": rand(p, p, c, dim, g=g), "embedding/bias": rand(dim, g=g),
            "cls": rand(1, 1, dim, g=g), "pos_embedding": rand(1, n + 1, dim, g=g),
            "encoder_norm/scale": 1 + rand(dim, g=g), "encoder_norm/bias": rand(dim, g=g),
            "head/kernel": rand(dim, classes, g=g), "head/bias": rand(classes, g=g)}
    for i in range(depth):
        b = f"Transformer/encoderblock_{i}/"
        a = b + "MultiHeadDotProductSubspaceAttention_0/"
        tree.update({b + "LayerNorm_0/scale": 1 + rand(dim, g=g), b + "LayerNorm_0/bias": rand(dim, g=g),
                     a + "proj/kernel": rand(dim, dim, g=g), a + "out/kernel": rand(dim, dim, g=g),
                     b + "LayerNorm_1/scale": 1 + rand(dim, g=g), b + "LayerNorm_1/bias": rand(dim, g=g),
                     b + "OvercompleteISTABlock_0/D": rand(dim, ratio * dim, g=g),
                     b + "OvercompleteISTABlock_0/D1": rand(dim, ratio * dim, g=g)})
    return tree


def crate_alpha_source_forward(t, image_nchw, heads, depth, eta=0.1, lam=0.1):
    x = image_nchw.permute(0, 2, 3, 1)  # NHWC, as JAX
    k = t["embedding/kernel"]
    p = k.shape[0]
    n, h, w, c = x.shape
    patches = x.reshape(n, h // p, p, w // p, p, c)
    x = torch.einsum("nhawbc,abco->nhwo", patches, k) + t["embedding/bias"]  # Conv, stride = kernel = p
    x = x.reshape(n, -1, x.shape[-1])
    x = torch.cat([t["cls"].expand(n, -1, -1), x], 1) + t["pos_embedding"]
    for i in range(depth):
        b = f"Transformer/encoderblock_{i}/"
        a = b + "MultiHeadDotProductSubspaceAttention_0/"
        y = ln(x, t[b + "LayerNorm_0/scale"], t[b + "LayerNorm_0/bias"], 1e-6)
        x = x + heads_attention(y @ t[a + "proj/kernel"], heads) @ t[a + "out/kernel"]
        y = ln(x, t[b + "LayerNorm_1/scale"], t[b + "LayerNorm_1/bias"], 1e-6)
        D, D1 = t[b + "OvercompleteISTABlock_0/D"], t[b + "OvercompleteISTABlock_0/D1"]
        z1 = F.relu(eta * torch.einsum("pd,nlp->nld", D, y) - eta * lam)
        lasso = torch.einsum("pd,nlp->nld", D, torch.einsum("dp,nlp->nld", D, z1) - y)
        z2 = F.relu(z1 - eta * lasso - eta * lam)
        x = x + torch.einsum("dp,nlp->nld", D1, z2)
    cls = ln(x, t["encoder_norm/scale"], t["encoder_norm/bias"], 1e-6)[:, 0]
    return cls @ t["head/kernel"] + t["head/bias"]


def save_msgpack(tree: dict, path):
    import msgpack

    nested = {}
    for key, v in tree.items():
        node = nested.setdefault("params", {})
        *parts, last = key.split("/")
        for part in parts:
            node = node.setdefault(part, {})
        a = v.numpy()
        node[last] = msgpack.ExtType(1, msgpack.packb([list(a.shape), a.dtype.name, a.tobytes()]))
    path.write_bytes(msgpack.packb(nested))


@pytest.mark.parametrize("fmt", ["npz", "msgpack"])
def test_crate_alpha_flax_trees_convert_exactly(fmt, tmp_path):
    g = torch.Generator().manual_seed(1)
    tree = crate_alpha_tree(g)
    path = tmp_path / f"params.{fmt}"
    if fmt == "npz":
        np.savez(path, **{f"params/{k}": v.numpy() for k, v in tree.items()})
    else:
        pytest.importorskip("msgpack")
        save_msgpack(tree, path)
    assert set(read_flax(path)) == set(tree)
    model = convert(path, tmp_path / "alpha", overrides={"heads": 3}).eval()
    assert model.name.startswith("crate_alpha") and model.config.norm_eps == 1e-6
    x = torch.randn(2, 3, 16, 16, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(srr.from_pretrained(tmp_path / "alpha")(x),
                                   crate_alpha_source_forward(tree, x, 3, 2), **TOL)


# ---- SimDINO (DINO's vision_transformer.py: patch_embed Conv2d, blocks with norm1/attn/norm2/mlp, norm) -----------

def dino_backbone(g, dim=32, depth=2, p=4, image=16, c=3, hidden=128):
    n = (image // p) ** 2
    sd = {"cls_token": rand(1, 1, dim, g=g), "pos_embed": rand(1, n + 1, dim, g=g),
          "patch_embed.proj.weight": rand(dim, c, p, p, g=g), "patch_embed.proj.bias": rand(dim, g=g),
          "norm.weight": 1 + rand(dim, g=g), "norm.bias": rand(dim, g=g)}
    for i in range(depth):
        q = f"blocks.{i}."
        sd.update({q + "norm1.weight": 1 + rand(dim, g=g), q + "norm1.bias": rand(dim, g=g),
                   q + "attn.qkv.weight": rand(3 * dim, dim, g=g), q + "attn.qkv.bias": rand(3 * dim, g=g),
                   q + "attn.proj.weight": rand(dim, dim, g=g), q + "attn.proj.bias": rand(dim, g=g),
                   q + "norm2.weight": 1 + rand(dim, g=g), q + "norm2.bias": rand(dim, g=g),
                   q + "mlp.fc1.weight": rand(hidden, dim, g=g), q + "mlp.fc1.bias": rand(hidden, g=g),
                   q + "mlp.fc2.weight": rand(dim, hidden, g=g), q + "mlp.fc2.bias": rand(dim, g=g)})
    return sd


def dino_forward(sd, x, heads, depth):
    w = sd["patch_embed.proj.weight"]
    t = F.conv2d(x, w, sd["patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    z = torch.cat([sd["cls_token"].expand(len(x), -1, -1), t], 1) + sd["pos_embed"]
    B, N, C = z.shape
    for i in range(depth):
        q = f"blocks.{i}."
        y = ln(z, sd[q + "norm1.weight"], sd[q + "norm1.bias"], 1e-6)
        qkv = F.linear(y, sd[q + "attn.qkv.weight"], sd[q + "attn.qkv.bias"])
        qkv = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(qkv[0] @ qkv[1].transpose(-2, -1) * (C // heads) ** -0.5, -1)
        y = (attn @ qkv[2]).transpose(1, 2).reshape(B, N, C)
        z = z + F.linear(y, sd[q + "attn.proj.weight"], sd[q + "attn.proj.bias"])
        y = ln(z, sd[q + "norm2.weight"], sd[q + "norm2.bias"], 1e-6)
        y = F.linear(F.gelu(F.linear(y, sd[q + "mlp.fc1.weight"], sd[q + "mlp.fc1.bias"])), sd[q + "mlp.fc2.weight"],
                     sd[q + "mlp.fc2.bias"])
        z = z + y
    return ln(z, sd["norm.weight"], sd["norm.bias"], 1e-6)[:, 0]


def test_a_simdino_checkpoint_converts_its_teacher_backbone_exactly(tmp_path):
    g = torch.Generator().manual_seed(2)
    teacher, student = dino_backbone(g), dino_backbone(g)
    head = {"head.mlp.0.weight": rand(64, 32, g=g), "head.last_layer.weight": rand(16, 64, g=g)}
    ckpt = {"teacher": {**{f"backbone.{k}": v for k, v in teacher.items()}, **head},
            "student": {f"module.backbone.{k}": v for k, v in student.items()}, "epoch": 3,
            "args": argparse.Namespace(arch="vit_small", eps=0.5), "optimizer": {"state": {}, "param_groups": []}}
    torch.save(ckpt, tmp_path / "checkpoint.pth")
    x = torch.randn(2, 3, 16, 16, generator=g)
    for which, sd in (("teacher", teacher), ("student", student)):
        model = convert(tmp_path / "checkpoint.pth", tmp_path / which, overrides={"heads": 4}, which=which).eval()
        with torch.no_grad():
            torch.testing.assert_close(srr.from_pretrained(tmp_path / which)(x), dino_forward(sd, x, 4, 2), **TOL)
    assert model.name.startswith("vit_")


# ---- ToST (the authors' vision code, XCiT-derived: conv stem, Fourier positions, ToST blocks, class attention) ----

def tost_source_state(g, dim=32, depth=2, heads=4, channels=3, classes=5, ca=2, hidden=128):
    sd, widths = {}, [channels, dim // 8, dim // 4, dim // 2, dim]
    for i in range(4):  # patch 16: four conv3x3/2 + BN, GELU between (Sequential indices 0, 2, 4, 6)
        q = f"patch_embed.proj.{2 * i}."
        sd.update({q + "0.weight": rand(widths[i + 1], widths[i], 3, 3, g=g), q + "1.weight": 1 + rand(widths[i + 1], g=g),
                   q + "1.bias": rand(widths[i + 1], g=g), q + "1.running_mean": rand(widths[i + 1], g=g),
                   q + "1.running_var": 1 + rand(widths[i + 1], g=g).abs(),
                   q + "1.num_batches_tracked": torch.tensor(100)})
    sd.update({"pos_embeder.token_projection.weight": rand(dim, 64, 1, 1, g=g),
               "pos_embeder.token_projection.bias": rand(dim, g=g), "cls_token": rand(1, 1, dim, g=g),
               "norm.weight": 1 + rand(dim, g=g), "norm.bias": rand(dim, g=g), "head.weight": rand(classes, dim, g=g),
               "head.bias": rand(classes, g=g)})

    def mlp_and_norms(q):
        sd.update({q + "norm1.weight": 1 + rand(dim, g=g), q + "norm1.bias": rand(dim, g=g),
                   q + "norm2.weight": 1 + rand(dim, g=g), q + "norm2.bias": rand(dim, g=g),
                   q + "gamma1": 1 + rand(dim, g=g), q + "gamma2": 1 + rand(dim, g=g),
                   q + "mlp.fc1.weight": rand(hidden, dim, g=g), q + "mlp.fc1.bias": rand(hidden, g=g),
                   q + "mlp.fc2.weight": rand(dim, hidden, g=g), q + "mlp.fc2.bias": rand(dim, g=g)})

    for i in range(depth):
        q = f"blocks.{i}."
        mlp_and_norms(q)
        sd.update({q + "attn.qkv.weight": rand(dim, dim, g=g), q + "attn.qkv.bias": rand(dim, g=g),
                   q + "attn.temp": 1 + rand(heads, 1, g=g), q + "attn.to_out.0.weight": rand(dim, dim, g=g),
                   q + "attn.to_out.0.bias": rand(dim, g=g)})
    for j in range(ca):
        q = f"cls_attn_blocks.{j}."
        mlp_and_norms(q)
        sd.update({q + "attn.qkv.weight": rand(3 * dim, dim, g=g), q + "attn.qkv.bias": rand(3 * dim, g=g),
                   q + "attn.proj.weight": rand(dim, dim, g=g), q + "attn.proj.bias": rand(dim, g=g)})
    return sd


def fourier(h, w, hidden=32, temperature=10000.0):
    """XCiT's PositionalEncodingFourier before its projection: (1, 2·hidden, h, w)."""
    not_mask = torch.ones(1, h, w)
    y = not_mask.cumsum(1)
    x = not_mask.cumsum(2)
    y = y / (y[:, -1:, :] + 1e-6) * 2 * math.pi
    x = x / (x[:, :, -1:] + 1e-6) * 2 * math.pi
    dim_t = torch.arange(hidden, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / hidden)
    px, py = x[:, :, :, None] / dim_t, y[:, :, :, None] / dim_t
    px = torch.stack((px[:, :, :, 0::2].sin(), px[:, :, :, 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[:, :, :, 0::2].sin(), py[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((py, px), dim=3).permute(0, 3, 1, 2)


def tost_source_forward(sd, x, heads, depth, ca=2):
    from references import tssa_reference

    for i in range(4):
        q = f"patch_embed.proj.{2 * i}."
        x = F.conv2d(x, sd[q + "0.weight"], stride=2, padding=1)
        x = F.batch_norm(x, sd[q + "1.running_mean"], sd[q + "1.running_var"], sd[q + "1.weight"], sd[q + "1.bias"],
                         False, 0.0, 1e-5)
        x = F.gelu(x) if i < 3 else x
    B, C, Hp, Wp = x.shape
    x = x.flatten(2).transpose(1, 2)
    pos = F.conv2d(fourier(Hp, Wp), sd["pos_embeder.token_projection.weight"], sd["pos_embeder.token_projection.bias"])
    x = x + pos.reshape(1, C, -1).permute(0, 2, 1)

    def mlp(q, y):
        return F.linear(F.gelu(F.linear(y, sd[q + "mlp.fc1.weight"], sd[q + "mlp.fc1.bias"])), sd[q + "mlp.fc2.weight"],
                        sd[q + "mlp.fc2.bias"])

    for i in range(depth):
        q = f"blocks.{i}."
        y = ln(x, sd[q + "norm1.weight"], sd[q + "norm1.bias"], 1e-6)
        a, _ = tssa_reference(y, sd[q + "attn.qkv.weight"], sd[q + "attn.qkv.bias"], sd[q + "attn.temp"],
                              sd[q + "attn.to_out.0.weight"], sd[q + "attn.to_out.0.bias"], heads)
        x = x + sd[q + "gamma1"] * a
        x = x + sd[q + "gamma2"] * mlp(q, ln(x, sd[q + "norm2.weight"], sd[q + "norm2.bias"], 1e-6))
    x = torch.cat((sd["cls_token"].expand(B, -1, -1), x), dim=1)
    for j in range(ca):  # XCiT's ClassAttentionBlock (tokens_norm False)
        q = f"cls_attn_blocks.{j}."
        y = ln(x, sd[q + "norm1.weight"], sd[q + "norm1.bias"], 1e-6)
        N = y.shape[1]
        qkv = F.linear(y, sd[q + "attn.qkv.weight"], sd[q + "attn.qkv.bias"])
        qkv = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((qkv[0][:, :, 0:1] * qkv[1]).sum(-1) * (C // heads) ** -0.5, -1)
        cls = (attn.unsqueeze(2) @ qkv[2]).transpose(1, 2).reshape(B, 1, C)
        cls = F.linear(cls, sd[q + "attn.proj.weight"], sd[q + "attn.proj.bias"])
        x = x + sd[q + "gamma1"] * torch.cat([cls, y[:, 1:]], dim=1)  # XCiT: the normalised patches ride along
        x = torch.cat([ln(x[:, 0:1], sd[q + "norm2.weight"], sd[q + "norm2.bias"], 1e-6), x[:, 1:]], dim=1)
        res = x
        c = sd[q + "gamma2"] * mlp(q, x[:, 0:1])
        x = res + torch.cat([c, x[:, 1:]], dim=1)  # ... and are added once more
    return F.linear(ln(x, sd["norm.weight"], sd["norm.bias"], 1e-6)[:, 0], sd["head.weight"], sd["head.bias"])


def test_the_authors_tost_checkpoint_converts_exactly(tmp_path, capsys):
    g = torch.Generator().manual_seed(4)
    sd = tost_source_state(g)
    ckpt = {"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 299,
            "args": argparse.Namespace(model="tost_cab_tiny_12_p16")}
    torch.save(ckpt, tmp_path / "tost.pth")
    assert main(["convert", str(tmp_path / "tost.pth"), str(tmp_path / "tost"), "--set", "image_size=64"]) == 0
    model = srr.from_pretrained(tmp_path / "tost").eval()
    assert type(model).__name__ == "ToSTOfficial" and model.config.heads == 4 and model.config.patch_size == 16
    x = torch.randn(2, 3, 64, 48, generator=g)  # another grid than the recorded size: Fourier positions adapt
    with torch.no_grad():
        torch.testing.assert_close(model(x), tost_source_forward(sd, x, 4, 2), **TOL)


def test_the_official_tost_architecture_has_the_published_parameter_counts():
    from srr.models import get_config, parameter_count

    assert parameter_count(get_config("tost_tiny_official")) == 5_769_328
    assert parameter_count(get_config("tost_small_official")) == 22_589_944
