"""Per-head bases of an attention projection, orthonormalised: the subspaces a head reads."""
from __future__ import annotations

import torch
from torch import Tensor

from ..measures import heads_from_qkv

__all__ = ["orthonormal_heads"]


@torch.no_grad()
def orthonormal_heads(weight: Tensor, heads: int) -> Tensor:
    """(K, d, p): for a projection ``weight`` (K·p × d) split into K blocks of p rows, an orthonormal basis of
    the row space of each head's block (reduced QR in float64; the sign of each column is fixed so that its largest
    entry is positive, for reproducibility)."""
    u = heads_from_qkv(weight.detach(), heads).double()  # (K, d, p): the head's rows as columns
    q, _ = torch.linalg.qr(u, mode="reduced")
    idx = q.abs().argmax(dim=-2, keepdim=True)
    sign = torch.sign(torch.gather(q, -2, idx))
    sign[sign == 0] = 1.0
    return (q * sign).to(weight.dtype)
