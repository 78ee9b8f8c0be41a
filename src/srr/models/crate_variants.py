"""The compression-step variants of the sparse-rate-reduction study (REFERENCE §8) as registry entries.

Every variant is :class:`~srr.models.crate.CRATE` with the same ISTA step and layer; only the output matrix of MSSA
changes (``attn_output``, see :mod:`srr.operators.mssa`):

    crate_c_*   CRATE-C   + A [U_1 … U_K]ᵀ  (the conceptual step, output through U itself)
    crate_n_*   CRATE-N   − A [U_1 … U_K]ᵀ  (the sign flipped)
    crate_t_*   CRATE-T   A [U_1 … U_K]     (``F.linear(A, qkv.weight)``, needs K·p = d)

with A the concatenated head outputs and the step αγ² fixed to ``attn_step`` = 1. The study ranks them
CRATE-C < CRATE-N < CRATE-T ≈ CRATE. They share the configuration of the CRATE entry of the same size (so they hold
d·K·p + d fewer parameters per layer: no ``to_out``).
"""
from __future__ import annotations

from .crate import CRATE
from .registry import get_entry, register_model

__all__ = ["VARIANTS"]

VARIANTS = {
    "c": ("subspace", "CRATE-C (§8): output through U itself"),
    "n": ("negative", "CRATE-N (§8): output through -U"),
    "t": ("transpose", "CRATE-T (§8): output through U^T, no new parameters"),
}

for _size in ("tiny", "small", "base", "large", "nano", "micro"):
    _base = get_entry(f"crate_{_size}")
    for _key, (_output, _text) in VARIANTS.items():
        register_model(f"crate_{_key}_{_size}", CRATE, f"{_text}; crate_{_size}'s configuration",
                       **{**_base.defaults, "attn_output": _output})
