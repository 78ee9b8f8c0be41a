"""Attention maps: a constant attention gives uniform maps, patch order matches the image, positions interpolate."""
import json

import pytest
import torch
from torch import nn

import srr
from srr.analysis.attention import attention_summary, cls_attention, upsample_maps
from srr.cli import main
from srr.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(dim=16, depth=2, heads=2)


@pytest.mark.parametrize("name", ["crate_nano", "vit_nano"])
def test_constant_attention_gives_uniform_maps(name):
    model = srr.create_model(name, **TINY)
    with torch.no_grad():  # zero queries and keys: every softmax row is uniform over the N+1 tokens
        for mod in model.modules():
            if hasattr(mod, "qkv"):
                mod.qkv.weight.zero_()
                if mod.qkv.bias is not None:
                    mod.qkv.bias.zero_()
    maps = cls_attention(model, torch.randn(3, 1, 8, 8))
    assert maps.shape == (2, 3, 2, 4, 4)
    torch.testing.assert_close(maps, torch.full_like(maps, 1 / 17))
    rows = attention_summary(maps[:, 0])
    assert len(rows) == 4
    assert all(abs(r["entropy"] - 1.0) < 1e-9 and abs(r["patch_mass"] - 16 / 17) < 1e-6 for r in rows)


class _OnePatch(nn.Module):
    """Fake attention model: the CLS token of head k attends only to patch token ``targets[k]``."""

    patch_hw = (2, 2)

    def __init__(self, targets):
        super().__init__()
        self.targets = targets
        self.p = nn.Parameter(torch.zeros(1))

    def attention_maps(self, x):
        n = (x.shape[2] // 2) * (x.shape[3] // 2) + 1
        a = torch.zeros(x.shape[0], len(self.targets), n, n)
        for k, t in enumerate(self.targets):
            a[:, k, 0, 1 + t] = 1.0
        return [a]


def test_patch_order_is_row_major_and_upsampling_fills_the_patch():
    model = _OnePatch([0, 5, 11])  # 4x6 grid on an 8x12 image: patch 5 is (0, 5), patch 11 is (1, 5)
    maps = cls_attention(model, torch.zeros(1, 1, 8, 12))[0, 0]
    assert maps.shape == (3, 4, 6)
    assert [tuple(torch.nonzero(m)[0].tolist()) for m in maps] == [(0, 0), (0, 5), (1, 5)]
    up = upsample_maps(maps, (2, 2))
    assert up.shape == (3, 8, 12)
    assert float(up[2, 2:4, 10:12].sum()) == 4.0 and float(up[2].sum()) == 4.0
    assert [r["peak"] for r in attention_summary(maps[None])] == [[0, 0], [0, 5], [1, 5]]


def test_model_without_attention_is_refused():
    with pytest.raises(ConfigError, match="exposes no attention_maps"):
        cls_attention(nn.Linear(2, 2), torch.zeros(1, 2))


def test_position_interpolation():
    model = srr.create_model("crate_nano", **TINY)
    assert model.position_embedding(model.grid) is model.pos_embedding
    with torch.no_grad():  # a field constant over the grid stays constant; the CLS position is kept
        model.pos_embedding[:, 1:] = torch.arange(16.0).view(1, 1, 16)
    pos = model.position_embedding((6, 8))
    assert pos.shape == (1, 49, 16)
    torch.testing.assert_close(pos[0, 1:], torch.arange(16.0).expand(48, 16))
    torch.testing.assert_close(pos[:, 0], model.pos_embedding[:, 0])
    assert model(torch.randn(2, 1, 12, 16)).shape == (2, 10)
    assert cls_attention(model, torch.randn(1, 1, 12, 16)).shape == (2, 1, 2, 6, 8)


def test_attention_cli_writes_images_and_json(tmp_path, capsys):
    out = tmp_path / "att"
    argv = ["attention", "crate_nano", "--set", "dim=16", "--set", "depth=2", "--set", "heads=2", "--index", "5",
            "--image-size", "12", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "attention.json").read_text())
    assert report["grid"] == [6, 6] and report["image_size"] == [12, 12] and len(report["heads"]) == 4
    assert all(0 < r["patch_mass"] < 1 and 0 < r["entropy"] <= 1 for r in report["heads"])
    for f in ("attention_grid.png", "attention_overlay.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["attention", "crate_nano", "--index", "100000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--index must lie in [0, 358], got 100000" in err and len(err.strip().splitlines()) == 1
