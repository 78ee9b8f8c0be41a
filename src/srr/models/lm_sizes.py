"""Named sizes of the causal language models, chosen so the four families have equal-ish parameter counts.

Per layer the families cost GPT 12d², CRATE-GPT 3d², AoT 2d² and ToST 10d² parameters (d the width), so at each
size CRATE-GPT doubles the GPT width, AoT doubles the width and takes 1.5 times the depth, and ToST widens by 9/8.
``srr models '*gpt*'`` prints the resulting counts; every family uses the byte vocabulary (256) by default.

| size | context | gpt (d/L/h) | crate_gpt | aot_gpt | tost_gpt |
|---|---|---|---|---|---|
| nano (CPU, minutes) | 128 | 128/4/4 | 256/4/8 | 256/6/8 | 144/4/4 |
| small | 256 | 384/6/6 | 768/6/12 | 768/9/12 | 432/6/6 |
| base (GPT-2 small body) | 1024 | 768/12/12 | 1536/12/24 | 1536/18/24 | 864/12/12 |
"""
from __future__ import annotations

from .registry import register_model

__all__ = ["LM_SIZES", "register_lm_sizes"]

LM_SIZES: dict[str, dict] = {
    "nano": {"context": 128, "gpt": (128, 4, 4), "crate_gpt": (256, 4, 8), "aot_gpt": (256, 6, 8),
             "tost_gpt": (144, 4, 4)},
    "small": {"context": 256, "gpt": (384, 6, 6), "crate_gpt": (768, 6, 12), "aot_gpt": (768, 9, 12),
              "tost_gpt": (432, 6, 6)},
    "base": {"context": 1024, "gpt": (768, 12, 12), "crate_gpt": (1536, 12, 24), "aot_gpt": (1536, 18, 24),
             "tost_gpt": (864, 12, 12)},
}


def register_lm_sizes(family: str, builder, description: str) -> None:
    """Register ``{family}_{size}`` for every size of :data:`LM_SIZES` as a ``task="lm"`` model."""
    for size, table in LM_SIZES.items():
        dim, depth, heads = table[family]
        register_model(f"{family}_{size}", builder,
                       f"{description}; context {table['context']}, dim {dim}, depth {depth}, heads {heads}",
                       task="lm", vocab_size=256, context=table["context"], dim=dim, depth=depth, heads=heads)
