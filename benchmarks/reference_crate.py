"""The authors' formulation of CRATE, transcribed for the benchmarks (REFERENCE §2), with their parameter names.

It is what the published code computes, step by step: the ISTA block takes three matrix products
(``x Dᵀ``, then ``(x Dᵀ) D`` and ``x D``), the attention forms the softmax matrix explicitly, and the einops
rearranges are written as reshape/permute. srr's state dict loads into it strictly (``load_state_dict``), so the two
compute the same function and can be timed against each other. This module exists for comparison only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class _ThreeProductISTA(nn.Module):
    def __init__(self, dim, step_size=0.1, lambd=0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.kaiming_uniform_(self.weight)
        self.step_size, self.lambd = step_size, lambd

    def forward(self, x):
        x1 = F.linear(x, self.weight)                    # x Dᵀ
        grad_1 = F.linear(x1, self.weight.t())           # x Dᵀ D
        grad_2 = F.linear(x, self.weight.t())            # x D
        update = self.step_size * (grad_2 - grad_1) - self.step_size * self.lambd
        return F.relu(x + update)


class _ExplicitAttention(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        self.qkv = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(0.0))

    def forward(self, x):
        b, n, _ = x.shape
        w = self.qkv(x).reshape(b, n, self.heads, -1).permute(0, 2, 1, 3)     # b n (h d) -> b h n d
        dots = torch.matmul(w, w.transpose(-1, -2)) * self.scale
        attn = torch.softmax(dots, dim=-1)
        out = torch.matmul(attn, w)
        out = out.permute(0, 2, 1, 3).reshape(b, n, -1)                      # b h n d -> b n (h d)
        return self.to_out(out)


class _Patches(nn.Module):
    def __init__(self, patch):
        super().__init__()
        self.p = patch

    def forward(self, img):                                                  # b c (h p1) (w p2) -> b (h w) (p1 p2 c)
        b, c, hh, ww = img.shape
        p = self.p
        x = img.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (hh // p) * (ww // p), p * p * c)


class AuthorsCRATE(nn.Module):
    """CRATE as the authors wrote it; arguments as :class:`srr.models.crate.CRATE` (square images, cls pooling)."""

    def __init__(self, image_size, patch_size, num_classes, dim, depth, heads, dim_head=None, channels=3):
        super().__init__()
        dim_head = dim // heads if dim_head is None else dim_head
        patch_dim = channels * patch_size**2
        n = (image_size // patch_size) ** 2
        self.to_patch_embedding = nn.Sequential(_Patches(patch_size), nn.LayerNorm(patch_dim),
                                                nn.Linear(patch_dim, dim), nn.LayerNorm(dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, n + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = nn.Module()
        self.transformer.layers = nn.ModuleList(
            nn.ModuleList([_PreNorm(dim, _ExplicitAttention(dim, heads, dim_head)),
                           _PreNorm(dim, _ThreeProductISTA(dim))])
            for _ in range(depth))
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, img):
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        cls_tokens = self.cls_token.expand(b, 1, -1)                         # repeat '1 1 d -> b 1 d'
        x = torch.cat((cls_tokens, x), dim=1)
        x += self.pos_embedding[:, :(n + 1)]
        for attn, ff in self.transformer.layers:
            grad_x = attn(x) + x
            x = ff(grad_x)
        return self.mlp_head(x[:, 0])


def authors_twin(model) -> AuthorsCRATE:
    """An :class:`AuthorsCRATE` holding exactly the weights of the srr CRATE ``model`` (strict state-dict load)."""
    cfg = model.config["args"]
    twin = AuthorsCRATE(cfg["image_size"], cfg["patch_size"], cfg["num_classes"], cfg["dim"], cfg["depth"],
                        cfg["heads"], cfg.get("dim_head"), cfg["channels"])
    twin.load_state_dict(model.state_dict(), strict=True)
    return twin
