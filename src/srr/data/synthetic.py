"""Synthetic data: a mixture of K low-rank Gaussians on incoherent subspaces of R^d.

Class k draws ``x = U_k a + σ·n`` with ``U_k`` (d × r_k) orthonormal, ``a ~ N(0, I/r_k)`` and ``n ~ N(0, I/d)``, so the
signal and the noise have expected squared norm 1 and σ² respectively. When ``Σ r_k ≤ d`` the subspaces are
mutually orthogonal (columns of one random orthogonal matrix); otherwise they are independent random subspaces, which
are incoherent with high probability. ``--data synthetic:k=4,d=32,rank=3,n=300,noise=0.1,seed=0`` gives vectors as
(n, 1, 1, d) "images" (use ``patch_size=[1, P]``); :func:`token_sets` gives token sets for the layer instruments.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_memory
from ..errors import DataError
from .image_data import ImageData
from .sources import register_source
from .spec import Option
from .splits import seeded_split

__all__ = ["SubspaceMixture", "mixture_of_subspaces", "token_sets"]


@dataclass
class SubspaceMixture:
    x: Tensor  # (m, d) samples in rows
    labels: Tensor  # (m,)
    bases: list[Tensor]  # K tensors (d, r_k), orthonormal columns
    signal: Tensor  # (m, d) the noise-free part


def _bases(k: int, d: int, ranks: list[int], g: torch.Generator) -> list[Tensor]:
    if sum(ranks) <= d:
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
        cols = torch.split(q[:, : sum(ranks)], ranks, dim=1)
        return [c.contiguous() for c in cols]
    return [torch.linalg.qr(torch.randn(d, r, generator=g))[0] for r in ranks]


def mixture_of_subspaces(k: int = 4, d: int = 32, rank: int | list[int] = 3, n: int | list[int] = 300,
                         noise: float = 0.1, seed: int = 0) -> SubspaceMixture:
    """Draw ``n`` samples per class (an int or one per class) from K Gaussians of the given ranks."""
    ranks = [rank] * k if isinstance(rank, int) else list(rank)
    counts = [n] * k if isinstance(n, int) else list(n)
    if len(ranks) != k or len(counts) != k:
        raise DataError(f"need one rank and one count per class (k={k}), got {ranks} and {counts}")
    if k < 1 or d < 1 or min(ranks) < 1 or max(ranks) > d or min(counts) < 1 or noise < 0:
        raise DataError(f"invalid mixture: k={k}, d={d}, ranks={ranks}, counts={counts}, noise={noise}")
    g = torch.Generator().manual_seed(seed)
    bases = _bases(k, d, ranks, g)
    signal = torch.cat([torch.randn(c, r, generator=g) @ u.T / r**0.5 for c, r, u in zip(counts, ranks, bases)])
    labels = torch.cat([torch.full((c,), j, dtype=torch.long) for j, c in enumerate(counts)])
    x = signal + noise * torch.randn(signal.shape, generator=g) / d**0.5
    return SubspaceMixture(x, labels, bases, signal)


def token_sets(batch: int = 8, tokens: int = 64, k: int = 4, d: int = 32, rank: int = 3, noise: float = 0.1,
               seed: int = 0) -> tuple[Tensor, Tensor, list[Tensor], Tensor]:
    """``batch`` token sets of ``tokens`` tokens each, every token drawn from one of the K subspaces.

    Returns ``(Z (batch, tokens, d), labels (batch, tokens), bases, signal (batch, tokens, d))``.
    """
    mix = mixture_of_subspaces(k, d, rank, n=max(1, -(-batch * tokens // k)), noise=noise, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    pick = torch.randperm(len(mix.x), generator=g)[: batch * tokens]
    shape = (batch, tokens)
    return mix.x[pick].view(*shape, d), mix.labels[pick].view(shape), mix.bases, mix.signal[pick].view(*shape, d)


#: the options of ``--data synthetic:...``, each range-checked where it is parsed
OPTIONS = {
    "k": Option(int, 4, low=1, high=1 << 16), "d": Option(int, 32, low=1, high=1 << 20),
    "rank": Option(int, 3, low=1, high=1 << 20), "n": Option(int, 300, low=1, high=1 << 30),
    "noise": Option(float, 0.1, low=0.0), "seed": Option(int, 0, low=0, high=2**63 - 1),
}


@register_source("synthetic", "mixture of K low-rank Gaussians on incoherent subspaces "
                              "(synthetic:k=4,d=32,rank=3,n=300,noise=0.1,seed=0)", options=OPTIONS)
def _load(spec) -> ImageData:
    opts = dict(spec.options)
    k, d, n = opts["k"], opts["d"], opts["n"]
    check_memory(4 * 4 * k * n * d + 4 * d * d, f"{spec.text}: {k} x {n} samples of dimension {d}")
    mix = mixture_of_subspaces(**opts)
    tr, te = seeded_split(len(mix.x), 0.2, opts["seed"])
    x = mix.x.view(len(mix.x), 1, 1, d)
    return ImageData.from_tensors("synthetic", spec.text, x[tr], mix.labels[tr], x[te], mix.labels[te], k,
                                  mean=[0.0], std=[1.0])
