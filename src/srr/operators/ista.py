"""One ISTA step against a square dictionary, the sparsification step of CRATE (see docs/operators.md).

    ISTA(x) = ReLU(x + η·(x D − x Dᵀ D) − η·λ)    (x D means F.linear(x, D.t()))

It is one proximal-gradient step of the LASSO ``min_{z ≥ 0} λ‖z‖₁ + ½‖x − z Dᵀ‖²`` started at z = x: it makes the
tokens sparse in the dictionary D (the −λ‖Z‖₀ term of the sparse rate reduction, with ‖·‖₁ as its surrogate), and
the output is non-negative.

The authors' code takes three matrix products of the tokens. The step is linear in x before the ReLU, so srr folds
the dictionary into one d × d matrix first:

    ISTA(x) = ReLU(x + x·K − ηλ),   K = η·(D − DᵀD)

which costs one product of the tokens (``addmm``) plus a d × d × d product, instead of three token products; it is
used when the tokens outnumber d (a training batch). For fewer tokens (one image at inference) the two-product form
``ReLU(x + η·F.linear(x − F.linear(x, D), D.t()) − ηλ)`` is cheaper. Both equal the authors' value up to float
round-off (about 1e-7 relative in float32). Under ``torch.no_grad`` K is cached until the weight changes. Inside a
``TorchFunctionMode`` (instruments that record every ``F.linear(h, D)``, such as :mod:`srr.analysis.ansatz`) the
two-product form is used, so D and Dᵀ appear as the linear maps they are.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ISTA(nn.Module):
    """ISTA step with a learned square dictionary ``weight`` (dim × dim, kaiming-uniform), step η, threshold λ."""

    def __init__(self, dim: int, step_size: float = 0.1, lambd: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.kaiming_uniform_(self.weight)
        self.step_size, self.lambd = step_size, lambd
        self._cache: tuple | None = None

    def folded(self) -> Tensor:
        """``K = η·(D − DᵀD)`` (d × d), so that ``x + η·(x D − x DᵀD) = x + x K``; cached when no gradient is taken."""
        d = self.weight
        if (torch.is_grad_enabled() and d.requires_grad) or torch.compiler.is_compiling():
            return torch.addmm(d, d.t(), d, alpha=-1.0).mul(self.step_size)
        key = (id(d), d.data_ptr(), d._version, d.dtype, d.device, self.step_size)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, torch.addmm(d, d.t(), d, alpha=-1.0).mul_(self.step_size))
        return self._cache[1]

    def forward(self, x: Tensor) -> Tensor:
        d = self.weight
        dim = d.shape[0]
        shift = self.step_size * self.lambd
        if (x.numel() >= dim * dim or not (torch.is_grad_enabled() and d.requires_grad)) and not _function_mode():
            flat = x.reshape(-1, dim)
            # in place on the fresh product: no temporaries (addmm's backward needs its inputs, not its output)
            return torch.addmm(flat, flat, self.folded()).sub_(shift).relu_().view(x.shape)
        residual = x - F.linear(x, d)  # x − x Dᵀ
        return F.relu(x + self.step_size * F.linear(residual, d.t()) - shift)


def _function_mode() -> bool:
    """Whether a ``TorchFunctionMode`` is active (an instrument intercepting ``F.linear``)."""
    probe = getattr(torch._C, "_is_torch_function_mode_enabled", None)
    return bool(probe()) if probe is not None else False
