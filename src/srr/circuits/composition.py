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


def composition_scores(heads: list[list[HeadWeights]]) -> list[dict]:
    """Every pair (earlier layer, head) → (later layer, head) with its three scores: a list of dicts
    ``{"from": [layer, head], "to": [layer, head], "q": …, "k": …, "v": …}``."""
    rows = []
    for l1, layer1 in enumerate(heads):
        for layer2 in heads[l1 + 1:]:
            for h1 in layer1:
                ov1 = h1.ov
                for h2 in layer2:
                    qk2, ov2 = h2.qk, h2.ov
                    row = {"from": [h1.layer, h1.head], "to": [h2.layer, h2.head]}
                    row.update({kind: composition_score(kind, ov1, qk2, ov2) for kind in KINDS})
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
