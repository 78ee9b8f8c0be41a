"""The MCR² loss (maximal coding rate reduction), as in the authors' training code, exact under data parallelism.

For features Z (m × d, samples in rows, usually L2-normalised by the encoder) and memberships Π (hard labels or
soft, m × K):

    R_γ₁(Z)  = ½ logdet(I + γ₁ · d/(m ε²) · ZᵀZ)
    R^c(Z|Π) = Σ_k tr(Π_k)/(2m) · logdet(I + d/(tr(Π_k) ε²) · Zᵀ Π_k Z)        (an empty class contributes 0)
    loss     = −γ₂ · R_γ₁(Z) + R^c(Z|Π)

γ₁ scales inside the logdet of the expansion term, γ₂ weights it (the official semantics; both default to 1 as in
the official loss class). With γ₁ = γ₂ = 1 the loss is −ΔR (REFERENCE §1). ``eps`` is ε, not ε²: the official loss takes ε² under the name ``eps`` (its training default ``--eps 0.5`` is
``eps=sqrt(0.5)`` here, the default of this class).

Everything is computed from Gram matrices — ``ZᵀZ``, ``Zᵀ Π_k Z`` (d × d) and the counts ``tr Π_k`` and m — which
are sums over samples. When ``torch.distributed`` is initialised (and ``distributed`` is not False) they are
all-reduced before the log-determinants, so every process gets the loss of the *global* batch, exactly; the backward
pass sums the Gram gradients over processes, so that DDP's gradient averaging yields the exact global-batch gradient
(see :mod:`srr.losses.distributed`). Log-determinants go through :func:`srr.measures.logdet_i_plus`.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..checks import check_eps, check_finite
from ..measures.logdet import compute_dtype, logdet_i_plus
from .distributed import all_reduce_max, all_reduce_sum, distributed_world

__all__ = ["MCR2", "DEFAULT_EPS"]

DEFAULT_EPS = math.sqrt(0.5)


class MCR2(nn.Module):
    """``MCR2(eps, gamma1, gamma2)(Z, labels_or_memberships)`` → the scalar loss ``−γ₂ R_γ₁ + R^c``.

    ``num_classes`` fixes K for integer labels (otherwise ``max label + 1``, over all processes). ``dtype`` computes
    the Gram matrices and log-determinants in that precision (e.g. ``torch.float64``). ``distributed``: None (all-
    reduce when ``torch.distributed`` is initialised with more than one process), False (never), or ``group``
    selects the process group. :meth:`terms` returns the parts as well.
    """

    def __init__(self, eps: float = DEFAULT_EPS, gamma1: float = 1.0, gamma2: float = 1.0,
                 num_classes: int | None = None, dtype: torch.dtype | None = None, distributed: bool | None = None,
                 group=None):
        super().__init__()
        self.eps = check_eps(eps)
        if not (gamma1 > 0 and math.isfinite(gamma1) and math.isfinite(gamma2)):
            raise ConfigError(f"gamma1 must be positive and gamma2 finite, got {gamma1} and {gamma2}")
        if num_classes is not None and num_classes < 1:
            raise ConfigError(f"num_classes must be positive, got {num_classes}")
        self.gamma1, self.gamma2, self.num_classes = float(gamma1), float(gamma2), num_classes
        self.dtype, self.distributed, self.group = dtype, distributed, group

    def extra_repr(self) -> str:
        return f"eps={self.eps:.4g}, gamma1={self.gamma1}, gamma2={self.gamma2}"

    def forward(self, z: Tensor, target: Tensor) -> Tensor:
        return self.terms(z, target)["loss"]

    def _world(self) -> int:
        return 1 if self.distributed is False else distributed_world(self.group)

    def memberships(self, target: Tensor, m: int, dtype: torch.dtype, device) -> Tensor:
        """Π (m × K) from integer labels (one-hot) or soft memberships (checked)."""
        target = torch.as_tensor(target).to(device)
        if target.is_floating_point():
            check_finite(target, "memberships")
            if target.dim() != 2 or target.shape[0] != m:
                raise ConfigError(f"memberships must be (m, K) with m = {m}, got {tuple(target.shape)}")
            if self.num_classes is not None and target.shape[1] != self.num_classes:
                raise ConfigError(f"memberships have {target.shape[1]} columns but num_classes={self.num_classes}")
            if bool((target < 0).any()):
                raise ConfigError("memberships must be non-negative")
            return target.to(dtype)
        if target.dim() != 1 or target.shape[0] != m:
            raise ConfigError(f"labels must be (m,) with m = {m}, got {tuple(target.shape)}")
        if m and int(target.min()) < 0:
            raise ConfigError(f"labels must be non-negative, got {int(target.min())}")
        top = int(target.max()) + 1 if m else 1
        k = self.num_classes if self.num_classes is not None else top
        if self._world() > 1 and self.num_classes is None:
            k = all_reduce_max(k, target.device, self.group)
        if top > k:
            raise ConfigError(f"label {top - 1} is out of range for num_classes={k}")
        return nn.functional.one_hot(target.long(), k).to(dtype)

    def terms(self, z: Tensor, target: Tensor) -> dict[str, Tensor]:
        """``{"loss", "R" (= R_γ₁), "Rc", "delta_R" (= R − R^c with γ₁ = 1)}`` of the (global) batch."""
        stats = self.statistics(z, target)
        if self._world() > 1:
            keys = list(stats)
            packed = all_reduce_sum(torch.cat([stats[k].reshape(-1) for k in keys]), self.group)
            parts = torch.split(packed, [stats[k].numel() for k in keys])
            stats = {k: p.view(stats[k].shape) for k, p in zip(keys, parts)}
        return self.from_statistics(stats)

    def statistics(self, z: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The sums over samples the loss is a function of: ``gram`` ZᵀZ (d × d), ``class_grams`` Zᵀ Π_k Z
        (K × d × d), ``counts`` tr Π_k (K) and ``total`` m. Sums of these over processes (or micro-batches) give
        the statistics of the union, so :meth:`from_statistics` of the sums is the loss of the global batch."""
        check_finite(z, "Z")
        if z.dim() != 2:
            raise ConfigError(f"MCR² expects features (m, d) with samples in rows, got shape {tuple(z.shape)}")
        z = z.to(compute_dtype(z, self.dtype))
        m, d = z.shape
        pi = self.memberships(target, m, z.dtype, z.device)
        class_grams = (z.mT.unsqueeze(0) * pi.mT.unsqueeze(1)) @ z  # (K, d, d): Zᵀ Π_k Z
        return {"gram": z.mT @ z, "class_grams": class_grams, "counts": pi.sum(0), "total": z.new_tensor([float(m)])}

    def from_statistics(self, stats: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{"loss", "R", "Rc", "delta_R"}`` from (summed) :meth:`statistics`."""
        gram, class_grams, counts, total = stats["gram"], stats["class_grams"], stats["counts"], stats["total"][0]
        d = gram.shape[-1]
        if float(total.detach()) == 0:
            raise ConfigError("MCR² of zero samples is undefined")
        scale = d / (total * self.eps**2)
        r_gamma = 0.5 * logdet_i_plus(gram, self.gamma1 * scale)
        class_scale = d / (counts.clamp_min(1e-12) * self.eps**2)
        rc = (counts / (2 * total) * logdet_i_plus(class_grams, class_scale)).sum()
        r = r_gamma if self.gamma1 == 1.0 else 0.5 * logdet_i_plus(gram.detach(), scale)
        return {"loss": -self.gamma2 * r_gamma + rc, "R": r_gamma, "Rc": rc, "delta_R": (r - rc).detach()}
