"""AoT, the attention-only transformer of unrolled subspace denoising (REFERENCE §5): MSSA layers, no MLP.

Each layer is one denoising step of the tokens towards their subspaces, pre-norm, with a residual:

    Z ← Z + η Σ_k U_k U_kᵀ Z softmax(Zᵀ U_k U_kᵀ Z)      i.e.  x = x + MSSA(LN(x)) with the output through U

(in rows: ``x + η · [softmax(w_k w_kᵀ/√p) w_k]_k [U_1 … U_K]ᵀ`` with ``w_k = LN(x) U_k``; MSSA ``output="subspace"``,
``step`` = η). For tokens from a mixture of noisy low-rank Gaussians each layer multiplies their signal-to-noise
ratio by (1 + ητ). Stated choices: the softmax keeps MSSA's scale p^-½ (REFERENCE §5 writes none: it is absorbed in
U); η is a fixed hyper-parameter (default 1), not learned; ``attn_output="learned"`` gives the variant with a free
output matrix (as the authors' CRATE code). Only ``qkv`` = U_[K] and the LayerNorms are parameters of a layer
(d·K·p + 2d), so AoT has a third of CRATE's layer parameters at equal width; the CPU sizes are wider
(``aot_nano``, ``aot_micro``) to match ``crate_nano`` / ``crate_micro``. Named sizes use CRATE's widths.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..operators import MSSA, PreNorm
from .hub import PretrainedMixin
from .registry import register_model
from .vision import VisionBackbone
from .whitebox import AttentionMapMixin, SubspaceMixin, TransformerMixin, crate_widths

__all__ = ["AoT", "AoTTransformer"]


class AoTTransformer(nn.Module):
    """``layers[i] = [PreNorm(MSSA)]`` (key names ``layers.{i}.0.norm``, ``layers.{i}.0.fn.qkv`` as CRATE's)."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, dropout: float = 0.0,
                 attn_output: str = "subspace", step: float = 1.0):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([PreNorm(dim, MSSA(dim, heads, dim_head, dropout, output=attn_output, step=step))])
            for _ in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        for (attn,) in self.layers:
            x = x + attn(x)
        return x

    def trace(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per layer: ``input`` Z^ℓ, ``mssa_input`` LN(Z^ℓ) and ``output`` Z^{ℓ+1}."""
        records = []
        for (attn,) in self.layers:
            normed = attn.norm(x)
            out = x + attn.fn(normed)
            records.append({"input": x, "mssa_input": normed, "output": out})
            x = out
        return records


class AoT(TransformerMixin, SubspaceMixin, AttentionMapMixin, PretrainedMixin, VisionBackbone):
    """Attention-only transformer for images: CRATE's constructor arguments minus the ISTA ones, plus
    ``attn_output`` (default ``"subspace"``, REFERENCE §5) and ``step`` (η)."""

    def __init__(self, image_size=224, patch_size=16, num_classes: int = 1000, dim: int = 384, depth: int = 12,
                 heads: int = 6, dim_head: int | None = None, channels: int = 3, pool: str = "cls",
                 dropout: float = 0.0, emb_dropout: float = 0.0, attn_output: str = "subspace", step: float = 1.0):
        super().__init__(image_size, patch_size, num_classes, dim, channels, pool, emb_dropout)
        dim_head = dim // heads if dim_head is None else dim_head
        self.heads, self.dim_head, self.depth = heads, dim_head, depth
        self.transformer = AoTTransformer(dim, depth, heads, dim_head, dropout, attn_output, step)


for _size in ("tiny", "small", "base", "large"):
    register_model(f"aot_{_size}", AoT, f"AoT (attention only) at CRATE-{_size[0].upper()}'s width (ImageNet 224/16)",
                   **crate_widths(_size))
register_model("aot_nano", AoT, "CPU: AoT on 8x8 digits, patch 2 (params ~ crate_nano)", image_size=8, patch_size=2,
               num_classes=10, channels=1, dim=160, depth=4, heads=4, pool="mean")
register_model("aot_micro", AoT, "CPU: AoT on 28x28 (MNIST), patch 4 (params ~ crate_micro)", image_size=28,
               patch_size=4, num_classes=10, channels=1, dim=216, depth=6, heads=4)
