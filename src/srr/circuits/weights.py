"""Per-head circuit matrices W_QK and W_OV of every attention layer, their symmetry and their spectra.

For head h with queries ``q = W_Q x``, keys ``k = W_K x``, values ``v = W_V x`` and output ``W_O v`` (x a column
vector of the residual stream, W_Q, W_K, W_V of shape p × d and W_O of d × p):

    W_QK = W_Qᵀ W_K   (d × d; the attention score of token i on token j is x_iᵀ W_QK x_j / √p)
    W_OV = W_O W_V    (d × d; what the head writes into the residual stream for each token it attends to)

both of rank ≤ p. Where srr's operators keep their matrices:

* MHSA (ViT, GPT): rows ``[h·p, (h+1)·p)`` of the three thirds of ``qkv.weight`` are W_Q, W_K, W_V; the columns of
  ``proj.weight`` of head h are W_O. The score reads queries and keys through separate matrices, so W_QK is
  asymmetric in general.
* MSSA (CRATE, CRATE-α, AoT): W_Q = W_K = W_V = U_hᵀ (the rows of head h of ``qkv.weight``), so ``W_QK = U_h U_hᵀ``
  is symmetric positive semi-definite by construction. W_O is the head's columns of ``to_out`` (CRATE, the learned
  output), ``s·U_h`` (CRATE-C, AoT; s the fixed step), ``−s·U_h`` (CRATE-N) or the head's columns of ``s·[U_1 … U_K]``
  read as a d × d matrix (CRATE-Transpose).
* TSSA (ToST): no token-by-token score exists; each token's write is ``−Π/(1 + s) ⊙ U_hᵀ x`` through the output
  matrix, so W_OV is reported at unit membership and zero second moment, ``−W_O U_hᵀ``, and W_QK is ``None``.

The LayerNorm before the attention scales every coordinate by its weight γ before any head reads it: by default the
reading matrices are taken with γ folded in (``W diag(γ)``), the convention of circuit analyses of pre-norm
transformers; biases (MHSA's, LayerNorm's β) are constant offsets and are left out. MSSA's W_QK stays symmetric PSD
with γ folded in (``diag(γ) U Uᵀ diag(γ)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..operators import MSSA, TSSA, MultiHeadSelfAttention

__all__ = ["HeadWeights", "head_weights", "symmetry_score", "spectrum", "low_rank_spectrum", "is_symmetric_psd"]


@dataclass
class HeadWeights:
    """One head's matrices (float64, detached): ``W_Q``, ``W_K``, ``W_V`` (p × d) or ``None`` where there is no
    query/key, ``W_O`` (d × p); ``kind`` names the operator ("mhsa", "mssa", "tssa")."""

    layer: int
    head: int
    kind: str
    W_Q: Tensor | None
    W_K: Tensor | None
    W_V: Tensor
    W_O: Tensor

    @property
    def qk(self) -> Tensor | None:
        """W_QK = W_Qᵀ W_K (d × d), or ``None`` for an operator without pairwise scores."""
        return None if self.W_Q is None else self.W_Q.T @ self.W_K

    @property
    def ov(self) -> Tensor:
        """W_OV = W_O W_V (d × d)."""
        return self.W_O @ self.W_V

    @property
    def qk_factors(self) -> tuple[Tensor, Tensor] | None:
        """(W_Qᵀ, W_K): W_QK as a product d × p times p × d, or ``None``."""
        return None if self.W_Q is None else (self.W_Q.T, self.W_K)

    @property
    def ov_factors(self) -> tuple[Tensor, Tensor]:
        """(W_O, W_V): W_OV as a product d × p times p × d."""
        return self.W_O, self.W_V


def _gamma(norm: nn.Module, dim: int) -> Tensor:
    weight = getattr(norm, "weight", None)
    return torch.ones(dim, dtype=torch.float64) if weight is None else weight.detach().double()


@torch.no_grad()
def _layer_heads(layer: int, attention: nn.Module, gamma: Tensor) -> list[HeadWeights]:
    K, p = attention.heads, attention.dim_head
    if isinstance(attention, MultiHeadSelfAttention):
        w = attention.qkv.weight.detach().double() * gamma
        o = attention.proj.weight.detach().double()
        rows = K * p
        return [HeadWeights(layer, h, "mhsa", w[h * p:(h + 1) * p], w[rows + h * p:rows + (h + 1) * p],
                            w[2 * rows + h * p:2 * rows + (h + 1) * p], o[:, h * p:(h + 1) * p]) for h in range(K)]
    if isinstance(attention, MSSA):
        u = attention.qkv.weight.detach().double()  # (K·p, d): rows of head h are U_hᵀ
        read = u * gamma
        out = []
        for h in range(K):
            sl = slice(h * p, (h + 1) * p)
            if attention.output == "learned":
                w_o = attention.to_out[0].weight.detach().double()[:, sl]
            elif attention.output == "transpose":
                w_o = attention.step * u[:, sl]
            else:
                w_o = (-attention.step if attention.output == "negative" else attention.step) * u[sl].T
            out.append(HeadWeights(layer, h, "mssa", read[sl], read[sl], read[sl], w_o))
        return out
    if isinstance(attention, TSSA):
        read = attention.qkv.weight.detach().double() * gamma
        w_o = attention.to_out[0].weight.detach().double()
        return [HeadWeights(layer, h, "tssa", None, None, read[h * p:(h + 1) * p], -w_o[:, h * p:(h + 1) * p])
                for h in range(K)]
    raise ConfigError(f"layer {layer}: no circuit reading for the attention operator {type(attention).__name__}")


def head_weights(model: nn.Module, fold_norm: bool = True) -> list[list[HeadWeights]]:
    """Per layer, per head the circuit matrices of ``model`` (any srr transformer with MHSA, MSSA or TSSA layers);
    ``fold_norm`` folds the pre-attention LayerNorm's weight into the reading matrices (see the module docstring)."""
    blocks = getattr(model, "block_list", None)
    if blocks is None:
        raise ConfigError(f"{type(model).__name__} has no transformer blocks: no attention heads to read")
    out = []
    for layer, block in enumerate(blocks):
        attention = block.attention
        dim = attention.qkv.weight.shape[1]
        gamma = _gamma(block.attention_norm, dim) if fold_norm else torch.ones(dim, dtype=torch.float64)
        out.append(_layer_heads(layer, attention, gamma))
    return out


def symmetry_score(m: Tensor) -> float:
    """‖M − Mᵀ‖_F / ‖M‖_F: 0 for a symmetric matrix, √2 for an antisymmetric one (0 for M = 0)."""
    norm = float(torch.linalg.matrix_norm(m))
    return 0.0 if norm == 0.0 else float(torch.linalg.matrix_norm(m - m.T)) / norm


def spectrum(m: Tensor, k: int | None = None) -> Tensor:
    """Eigenvalues of the square matrix ``m`` (complex in general), ordered by decreasing modulus; the first ``k``."""
    values = torch.linalg.eigvals(m.double())
    values = values[torch.argsort(values.abs(), descending=True)]
    return values if k is None else values[:k]


def low_rank_spectrum(left: Tensor, right: Tensor) -> Tensor:
    """The eigenvalues of ``left @ right`` (d × p times p × d) that can be non-zero: those of ``right @ left`` (p × p),
    ordered by decreasing modulus (the other d − p are 0). O(p²d) instead of O(d³)."""
    values = torch.linalg.eigvals((right @ left).double())
    return values[torch.argsort(values.abs(), descending=True)]


def is_symmetric_psd(m: Tensor, tol: float = 1e-12) -> bool:
    """Whether ``m`` is symmetric and positive semi-definite up to float64 round-off: ‖M − Mᵀ‖_F ≤ tol·‖M‖_F and
    every eigenvalue ≥ −tol·‖M‖_F."""
    m = m.double()
    scale = float(torch.linalg.matrix_norm(m)) or 1.0
    if float(torch.linalg.matrix_norm(m - m.T)) > tol * scale:
        return False
    return bool(torch.linalg.eigvalsh(m).min() >= -tol * scale)
