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
        d = self.weight
        coded = F.linear(x, d)                                  # x Dᵀ   (token product 1)
        reconstructed = F.linear(coded, d.t())                  # x Dᵀ D (token product 2)
        correlated = F.linear(x, d.t())                         # x D    (token product 3)
        eta = self.step_size
        return F.relu(x + eta * (correlated - reconstructed) - eta * self.lambd)


class _ExplicitAttention(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        self.qkv = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(0.0))

    def forward(self, x):
        batch, tokens, _ = x.shape
        heads = self.qkv(x).reshape(batch, tokens, self.heads, -1).permute(0, 2, 1, 3)  # (B, K, N, p)
        similarity = torch.matmul(heads, heads.transpose(-1, -2)) * self.scale        # (B, K, N, N), explicit
        mixed = torch.matmul(torch.softmax(similarity, dim=-1), heads)
        return self.to_out(mixed.permute(0, 2, 1, 3).reshape(batch, tokens, -1))


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
        patches = self.to_patch_embedding(img)
        z = torch.cat((self.cls_token.expand(patches.shape[0], 1, -1), patches), dim=1)
        z = z + self.pos_embedding[:, :z.shape[1]]
        for compress, sparsify in self.transformer.layers:
            z = sparsify(compress(z) + z)  # MSSA with its skip connection, then ISTA (no skip)
        return self.mlp_head(z[:, 0])


def authors_twin(model) -> AuthorsCRATE:
    """An :class:`AuthorsCRATE` holding exactly the weights of the srr CRATE ``model`` (strict state-dict load)."""
    cfg = model.config.to_dict()
    twin = AuthorsCRATE(cfg["image_size"], cfg["patch_size"], cfg["num_classes"], cfg["dim"], cfg["depth"],
                        cfg["heads"], cfg.get("dim_head"), cfg["channels"])
    twin.load_state_dict(model.state_dict(), strict=True)
    return twin
