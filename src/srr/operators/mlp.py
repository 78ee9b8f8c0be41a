"""The transformer's feed-forward block: ``Linear(dim, ratio·dim) → GELU → Linear(ratio·dim, dim)``."""
from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Module):
    """Two-layer perceptron with GELU, hidden width ``mlp_ratio · dim`` (4 in ViT and GPT)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(self.act(self.fc1(x))))
