"""Attention-pattern scores of every head on repeated random token sequences, and the in-context-learning score.

A probe is a batch of B sequences of T random tokens (uniform over the vocabulary) repeated twice, length 2T. With
the attention A (row i: where token i reads from; causal, so A[i, j] = 0 for j > i), per head:

    previous-token score   mean over i ≥ 1 of A[i, i − 1]
    induction score        mean over the second copy, T ≤ i < 2T, of A[i, i − T + 1]
                           (the token after the earlier occurrence of token i: what an induction head copies)
    duplicate-token score  mean over T ≤ i < 2T of A[i, i − T]   (the earlier occurrence itself)

and each score's chance level is the same mean of 1/(i + 1), the weight of uniform causal attention. The
in-context-learning score is the mean next-token loss (nats) over the second copy minus that over the first copy:
a model that copies the earlier occurrence predicts the second copy almost perfectly (a large negative score), one
that cannot stays at ln V on both halves (a score near 0). The first copy's loss is measured at positions
0 ≤ t < T − 1 and the second's at T ≤ t < 2T − 1 (position t predicts token t + 1; the token at position T starts the
repeat and is not predictable).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from ..errors import ConfigError, NonFiniteError

__all__ = ["repeated_tokens", "pattern_scores", "chance_levels", "position_losses", "icl_score", "attention_patterns"]


def repeated_tokens(vocab: int, length: int, batch: int = 8, seed: int = 0, *, low: int = 0) -> Tensor:
    """(batch, 2·length) int64: ``length`` tokens drawn uniformly from ``[low, vocab)``, then the same again."""
    check_int(vocab, "vocabulary size", low=2)
    check_int(length, "sequence length", low=2)
    check_int(batch, "batch", low=1)
    check_int(low, "lowest token", low=0, high=vocab - 1)
    g = torch.Generator().manual_seed(int(seed))
    first = torch.randint(low, vocab, (batch, length), generator=g)
    return torch.cat((first, first), dim=1)


def _diagonal_mean(a: Tensor, offset: int, start: int) -> Tensor:
    """Per head, the mean over batch and rows i ≥ start of A[i, i − offset]: a (…, K, N, N) → (K,)."""
    n = a.shape[-1]
    rows = torch.arange(start, n)
    values = a[..., rows, rows - offset]  # (B, K, len)
    return values.mean(dim=(0, -1))


def pattern_scores(patterns: list[Tensor], length: int) -> list[dict]:
    """Per layer and head the three scores from attention patterns (B, K, 2T, 2T) on a repeated probe of
    ``length`` T: a list of ``{"layer", "head", "previous_token", "induction", "duplicate_token"}``."""
    rows = []
    for layer, a in enumerate(patterns):
        if a.dim() != 4 or a.shape[-1] != 2 * length or a.shape[-2] != 2 * length:
            raise ConfigError(f"layer {layer}: attention of shape {tuple(a.shape)} does not fit a probe of "
                              f"2 x {length} tokens")
        a = a.double()
        prev = _diagonal_mean(a, 1, 1)
        induction = _diagonal_mean(a, length - 1, length)
        duplicate = _diagonal_mean(a, length, length)
        for head in range(a.shape[1]):
            rows.append({"layer": layer, "head": head, "previous_token": float(prev[head]),
                         "induction": float(induction[head]), "duplicate_token": float(duplicate[head])})
    return rows


def chance_levels(length: int) -> dict:
    """The scores of uniform causal attention on the same probe (mean of 1/(i + 1) over each score's rows)."""
    n = 2 * length
    inv = 1.0 / torch.arange(1, n + 1, dtype=torch.float64)
    second = float(inv[length:].mean())
    return {"previous_token": float(inv[1:].mean()), "induction": second, "duplicate_token": second}


@torch.no_grad()
def attention_patterns(model: nn.Module, ids: Tensor) -> list[Tensor]:
    """Per layer the attention (B, K, N, N) of ``model`` on ``ids``; refused for operators that form none."""
    if not all(hasattr(block.attention, "attention") for block in model.block_list):
        raise ConfigError(f"{type(model).__name__}'s attention forms no token-by-token pattern")
    return model.attention_maps(ids)


@torch.no_grad()
def position_losses(model: nn.Module, ids: Tensor) -> Tensor:
    """Mean next-token loss (nats) per position t (predicting token t + 1) over the batch: shape (N − 1,)."""
    logits = model(ids)[:, :-1].double()
    if not bool(torch.isfinite(logits).all()):
        raise NonFiniteError("the model's logits are not finite: its weights are broken")
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    return loss.view(ids.shape[0], -1).mean(dim=0)


def icl_score(losses: Tensor, length: int) -> dict:
    """From per-position losses on a repeated probe of ``length`` T: the mean losses of the first and second copy
    and their difference (second minus first)."""
    first = float(losses[:length - 1].mean())
    second = float(losses[length:2 * length - 1].mean())
    return {"loss_first_copy": first, "loss_second_copy": second, "icl_score": second - first}
