"""Windows of a token sequence: the training items of a language model and the fixed validation windows."""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DataError

__all__ = ["Windows", "validation_windows"]


class Windows:
    """The training windows of a token sequence: item ``s`` is ``(tokens[s : s+T], tokens[s+1 : s+T+1])``."""

    def __init__(self, tokens: Tensor, context: int):
        self.tokens, self.context = tokens, context
        self.offsets = torch.arange(context + 1)

    def __len__(self) -> int:
        return len(self.tokens) - self.context

    def __getitems__(self, starts) -> tuple[Tensor, Tensor]:
        w = self.tokens[torch.as_tensor(starts, dtype=torch.long).unsqueeze(1) + self.offsets]
        return w[:, :-1], w[:, 1:]


def validation_windows(n_tokens: int, context: int, max_tokens: int = 0) -> tuple[int, Tensor]:
    """``(c, starts)``: the window length ``min(context, n − 1)`` and the starts of the non-overlapping windows from
    the beginning (at most ``max_tokens`` targets, at least one window)."""
    c = min(context, n_tokens - 1)
    if c < 1:
        raise DataError(f"validation text of {n_tokens} token(s) is too short to evaluate")
    n_windows = (n_tokens - 1) // c
    if max_tokens:
        n_windows = max(1, min(n_windows, max_tokens // c))
    return c, torch.arange(n_windows) * c
