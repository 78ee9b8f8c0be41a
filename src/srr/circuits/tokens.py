"""Circuits on tokens for a language model: each head's QK and OV circuits and the direct path, vocab × vocab.

With the token embedding W_E (d × V, the columns are the tokens' vectors, ``wte.weight``ᵀ) and the unembedding W_U
(V × d, ``lm_head.weight`` with the final LayerNorm's weight γ folded in, ``W_U diag(γ)``):

    QK circuit   W_Eᵀ W_QK W_E        entry (a, b): how much a query token a attends to a key token b
    OV circuit   W_U W_OV W_E         entry (a, b): how much attending to token b raises the logit of token a
    direct path  W_U W_E              entry (a, b): the logit of a next token a from the current token b, no head

The direct path can hold bigram statistics, which are asymmetric (``q → u`` is likely, ``u → q`` not), so its
asymmetry ``‖M − Mᵀ‖_F/‖M‖_F`` tells whether the model can store them there. srr's language models tie the
unembedding to the embedding (``lm_head.weight is wte.weight``), so their direct path is ``W_Eᵀ diag(γ) W_E``,
symmetric by construction: bigrams must then be written by the layers. Positions are left out (each circuit is the
token-only part of the score). Only the top entries are kept, found a block of rows at a time, so a vocabulary of
any size is read without forming the whole V × V matrix.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..checks import check_int
from ..errors import ConfigError
from .weights import HeadWeights, symmetry_score

__all__ = ["embedding_matrices", "top_pairs", "qk_circuit", "ov_circuit", "direct_path", "token_circuits"]

ROWS_PER_BLOCK = 4096


def embedding_matrices(model: nn.Module) -> tuple[Tensor, Tensor]:
    """(W_E (d × V), W_U (V × d)) in float64, γ of the final LayerNorm folded into W_U."""
    if getattr(model, "wte", None) is None or getattr(model, "lm_head", None) is None:
        raise ConfigError(f"{type(model).__name__} is not a language model: it has no token embedding and unembedding")
    w_e = model.wte.weight.detach().double().T
    w_u = model.lm_head.weight.detach().double()
    gamma = getattr(getattr(model, "ln_f", None), "weight", None)
    if gamma is not None:
        w_u = w_u * gamma.detach().double()
    return w_e, w_u


def top_pairs(left: Tensor, right: Tensor, k: int = 10, *, largest: bool = True) -> list[dict]:
    """The ``k`` largest entries of ``left @ right`` (V × V) as ``{"row": a, "col": b, "value": v}``, computed a block
    of rows at a time."""
    check_int(k, "the number of pairs", low=1)
    best_v, best_i = [], []
    cols = right.shape[1]
    for start in range(0, left.shape[0], ROWS_PER_BLOCK):
        block = left[start:start + ROWS_PER_BLOCK] @ right
        flat = block.reshape(-1) if largest else -block.reshape(-1)
        v, i = torch.topk(flat, min(k, flat.numel()))
        best_v.append(v)
        best_i.append(i + start * cols)
    v, order = torch.topk(torch.cat(best_v), min(k, sum(t.numel() for t in best_v)))
    idx = torch.cat(best_i)[order]
    sign = 1.0 if largest else -1.0
    return [{"row": int(i) // cols, "col": int(i) % cols, "value": sign * float(x)} for x, i in zip(v, idx)]


def qk_circuit(head: HeadWeights, w_e: Tensor) -> Tensor | None:
    """W_Eᵀ W_QK W_E (V × V), or ``None`` for a head without pairwise scores."""
    qk = head.qk
    return None if qk is None else w_e.T @ qk @ w_e


def ov_circuit(head: HeadWeights, w_e: Tensor, w_u: Tensor) -> Tensor:
    """W_U W_OV W_E (V × V)."""
    return w_u @ head.ov @ w_e


def direct_path(w_e: Tensor, w_u: Tensor) -> Tensor:
    """W_U W_E (V × V)."""
    return w_u @ w_e


def _asymmetry(left: Tensor, right: Tensor) -> float | None:
    """‖M − Mᵀ‖/‖M‖ of M = left @ right when V is small enough to form it, else ``None``."""
    if left.shape[0] > ROWS_PER_BLOCK:
        return None
    return symmetry_score(left @ right)


def token_circuits(model: nn.Module, heads: list[list[HeadWeights]], k: int = 10) -> dict:
    """The top ``k`` token pairs of every head's QK and OV circuits and of the direct path, with the direct path's
    bigram asymmetry (``None`` above 4096 tokens)."""
    w_e, w_u = embedding_matrices(model)
    out = {"direct_path": {"top_pairs": top_pairs(w_u, w_e, k), "asymmetry": _asymmetry(w_u, w_e)}, "heads": []}
    for layer in heads:
        for h in layer:
            qk = h.qk
            out["heads"].append({
                "layer": h.layer, "head": h.head,
                "qk_top_pairs": None if qk is None else top_pairs(w_e.T @ qk, w_e, k),
                "ov_top_pairs": top_pairs(w_u @ h.ov, w_e, k),
            })
    return out
