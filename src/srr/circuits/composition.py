"""Composition of heads across layers: how much a later head reads what an earlier head writes.

For an earlier head h1 (writing W_OV^{h1}) and a later head h2 (Elhage et al.'s definitions, Frobenius norms):

    Q-composition  ‖W_QK^{h2 ᵀ} W_OV^{h1}‖ / (‖W_QK^{h2}‖ ‖W_OV^{h1}‖)   h1's output feeds h2's queries
    K-composition  ‖W_QK^{h2}   W_OV^{h1}‖ / (‖W_QK^{h2}‖ ‖W_OV^{h1}‖)   h1's output feeds h2's keys
    V-composition  ‖W_OV^{h2}   W_OV^{h1}‖ / (‖W_OV^{h2}‖ ‖W_OV^{h1}‖)   h1's output feeds h2's values

each in [0, 1]. A score means something only against what matrices of the same shapes and ranks give by chance, so
:func:`random_baseline` draws W_QK = AᵀB and W_OV = CD with Gaussian factors (p × d, d × p) and reports the mean
score over draws. For a symmetric W_QK (MSSA) Q- and K-composition are equal, since ‖Mᵀ X‖ = ‖M X‖ when M = Mᵀ.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_choice, check_int
from .weights import HeadWeights

__all__ = ["composition_score", "composition_scores", "random_baseline", "KINDS"]

KINDS = ("q", "k", "v")


def composition_score(kind: str, earlier_ov: Tensor, later_qk: Tensor | None, later_ov: Tensor) -> float:
    """One score of ``kind`` ("q", "k" or "v"); NaN-free: a zero matrix gives 0; ``None`` when the later head has
    no W_QK and ``kind`` needs one."""
    check_choice(kind, "composition kind", KINDS)
    if kind == "v":
        later, product = later_ov, later_ov @ earlier_ov
    elif later_qk is None:
        return None
    else:
        later = later_qk
        product = (later_qk.T if kind == "q" else later_qk) @ earlier_ov
    denominator = float(torch.linalg.matrix_norm(later)) * float(torch.linalg.matrix_norm(earlier_ov))
    return 0.0 if denominator == 0.0 else float(torch.linalg.matrix_norm(product)) / denominator


def _gram(f: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """(LᵀL, R Rᵀ), both p × p, of a factorised matrix L R."""
    return f[0].T @ f[0], f[1] @ f[1].T


def _norm_sq(gram: tuple[Tensor, Tensor]) -> float:
    """‖L R‖_F² = trace(LᵀL · R Rᵀ)."""
    return float((gram[0] * gram[1].T).sum())


def _product_norm(a: tuple[Tensor, Tensor], ga: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor],
                  gb: tuple[Tensor, Tensor]) -> float:
    """‖(L_a R_a)(L_b R_b)‖_F from the p × p pieces: with M = R_a L_b, ‖L_a M R_b‖² = trace(Mᵀ L_aᵀL_a M R_b R_bᵀ)."""
    m = a[1] @ b[0]
    return max(float(((ga[0] @ m) * (m @ gb[1])).sum()), 0.0) ** 0.5


def composition_scores(heads: list[list[HeadWeights]]) -> list[dict]:
    """Every pair (earlier layer, head) → (later layer, head) with its three scores: a list of dicts
    ``{"from": [layer, head], "to": [layer, head], "q": …, "k": …, "v": …}`` (``None`` where the later head has no
    W_QK). Computed from the factors of W_QK = W_Qᵀ W_K and W_OV = W_O W_V in O(p²d) per pair, never forming a
    d × d product; equal to :func:`composition_score` on the dense matrices."""
    info = []
    for layer in heads:
        for h in layer:
            qk = h.qk_factors
            qkt = None if qk is None else (qk[1].T, qk[0].T)
            ov = h.ov_factors
            info.append((h, qk, qkt, ov, None if qk is None else _gram(qk), None if qk is None else _gram(qkt),
                         _gram(ov)))
    rows = []
    for h1, _, _, ov1, _, _, g_ov1 in info:
        n_ov1 = _norm_sq(g_ov1) ** 0.5
        for h2, qk2, qkt2, ov2, g_qk2, g_qkt2, g_ov2 in info:
            if h2.layer <= h1.layer:
                continue
            row = {"from": [h1.layer, h1.head], "to": [h2.layer, h2.head]}
            if qk2 is None:
                row["q"] = row["k"] = None
            else:
                scale = _norm_sq(g_qk2) ** 0.5 * n_ov1
                row["q"] = 0.0 if scale == 0 else _product_norm(qkt2, g_qkt2, ov1, g_ov1) / scale
                row["k"] = 0.0 if scale == 0 else _product_norm(qk2, g_qk2, ov1, g_ov1) / scale
            scale = _norm_sq(g_ov2) ** 0.5 * n_ov1
            row["v"] = 0.0 if scale == 0 else _product_norm(ov2, g_ov2, ov1, g_ov1) / scale
            rows.append(row)
    return rows


def random_baseline(d: int, p: int, samples: int = 20, seed: int = 0) -> dict:
    """Mean Q-, K- and V-composition of random matrices of the shapes of a head (d × d of rank p): W_QK = AᵀB and
    W_OV = CD with independent standard Gaussian A, B (p × d), C (d × p), D (p × d)."""
    check_int(d, "width d", low=1)
    check_int(p, "head width p", low=1)
    check_int(samples, "samples", low=1)
    g = torch.Generator().manual_seed(int(seed))

    def low_rank():
        return torch.randn(d, p, generator=g, dtype=torch.float64) @ torch.randn(p, d, generator=g,
                                                                               dtype=torch.float64)

    sums = dict.fromkeys(KINDS, 0.0)
    for _ in range(samples):
        ov1, qk2, ov2 = low_rank(), low_rank(), low_rank()
        for kind in KINDS:
            sums[kind] += composition_score(kind, ov1, qk2, ov2)
    return {kind: total / samples for kind, total in sums.items()}
