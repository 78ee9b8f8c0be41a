"""LISTA: ISTA unrolled into T layers whose matrices and thresholds are learned (see docs/principles.md).

For the LASSO ``min_z ½‖x − D z‖² + λ‖z‖₁`` with a dictionary D (d × m, m atoms), ISTA from z = 0 is

    z_1 = S_θ(W_e x),   z_{t+1} = S_θ(W_e x + S z_t),   W_e = Dᵀ/L,  S = I − DᵀD/L,  θ = λ/L,  L = ‖D‖₂²

with S_θ(v) = sign(v)·max(|v| − θ, 0) the soft threshold. LISTA keeps this form and learns W_e (m × d), S (m × m)
and one threshold per atom and layer θ_t; ``tied=True`` shares W_e and S across the layers (the original LISTA),
``tied=False`` gives every layer its own. Codes are rows: ``forward(x)`` maps (B, d) to (B, m).

``dictionary_seed`` starts the network as ISTA on the dictionary :func:`random_dictionary` (d, m, seed) draws — the
one the ``--data sparse:…,seed=…`` source codes over — with the threshold λ/L of ``lambd``: at initialisation
T layers are exactly T ISTA iterations. With ``dictionary_seed=None`` the matrices start at PyTorch's default and
the thresholds at ``lambd`` itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..errors import DataError
from ..settings import option
from .config import MAX_DEPTH, MAX_WIDTH, ModelConfig
from .hub import PretrainedMixin
from .registry import register_model

__all__ = ["LISTAConfig", "LISTA", "random_dictionary", "soft_threshold", "ista_matrices"]


def random_dictionary(d: int, atoms: int, seed: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """A dictionary D (d × atoms) with independent N(0, 1) entries and every column scaled to unit norm."""
    g = torch.Generator().manual_seed(int(seed))
    D = torch.randn(d, atoms, generator=g, dtype=torch.float64)
    return (D / D.norm(dim=0, keepdim=True)).to(dtype)


def soft_threshold(v: Tensor, theta) -> Tensor:
    """``sign(v)·max(|v| − θ, 0)`` elementwise; θ a number or a tensor broadcast against v (differentiable in both)."""
    return torch.sign(v) * torch.relu(v.abs() - theta)


def ista_matrices(D: Tensor, lambd: float) -> tuple[Tensor, Tensor, float]:
    """``(W_e = Dᵀ/L, S = I − DᵀD/L, θ = λ/L)`` of ISTA on D with step 1/L, L = ‖D‖₂² (largest eigenvalue of DᵀD)."""
    D = D.double()
    L = float(torch.linalg.matrix_norm(D, ord=2)) ** 2
    eye = torch.eye(D.shape[1], dtype=D.dtype)
    return D.T / L, eye - D.T @ D / L, lambd / L


@dataclass
class LISTAConfig(ModelConfig):
    """T learned ISTA steps from signals of dimension ``dim`` to codes over ``atoms`` atoms."""

    dim: int = option(32, "signal dimension d", low=1, high=MAX_WIDTH)
    atoms: int = option(64, "number of atoms m (the code length)", low=1, high=MAX_WIDTH)
    depth: int = option(8, "layers T (ISTA iterations unrolled)", low=1, high=MAX_DEPTH)
    lambd: float = option(0.05, "λ of the LASSO the network starts from (threshold λ/L)", low=0.0, high=1e6)
    tied: bool = option(True, "share W_e and S across the layers (thresholds stay per layer)")
    dictionary_seed: int | None = option(None, "start as ISTA on random_dictionary(dim, atoms, seed) (None: random "
                                               "initialisation)", low=0, high=2**63 - 1, example=1)

    task: ClassVar[str] = "sparse"

    def parameter_estimate(self) -> int:
        layers = 1 if self.tied else self.depth
        return layers * (self.atoms * self.dim + self.atoms * self.atoms) + self.depth * self.atoms


class LISTA(PretrainedMixin, nn.Module):
    """``encoders`` (W_e) and ``mixers`` (S): one each when tied, else one per layer; ``thresholds`` (T, m)."""

    def __init__(self, config: LISTAConfig):
        super().__init__()
        self.config = config
        self.dim, self.atoms, self.depth = config.dim, config.atoms, config.depth
        layers = 1 if config.tied else config.depth
        self.encoders = nn.ModuleList(nn.Linear(config.dim, config.atoms, bias=False) for _ in range(layers))
        self.mixers = nn.ModuleList(nn.Linear(config.atoms, config.atoms, bias=False) for _ in range(layers))
        self.thresholds = nn.Parameter(torch.full((config.depth, config.atoms), float(config.lambd)))
        if config.dictionary_seed is not None:
            self.init_from_dictionary(random_dictionary(config.dim, config.atoms, config.dictionary_seed),
                                      config.lambd)

    @classmethod
    def from_config(cls, config: LISTAConfig) -> "LISTA":
        return cls(config)

    @torch.no_grad()
    def init_from_dictionary(self, D: Tensor, lambd: float) -> "LISTA":
        """Set every layer to the ISTA step on D (d × m) with threshold λ/L: T layers = T ISTA iterations from 0."""
        if tuple(D.shape) != (self.dim, self.atoms):
            raise DataError(f"a dictionary of shape {tuple(D.shape)} does not fit LISTA({self.dim} -> {self.atoms})")
        we, s, theta = ista_matrices(D, lambd)
        for enc, mix in zip(self.encoders, self.mixers):
            enc.weight.copy_(we)
            mix.weight.copy_(s)
        self.thresholds.fill_(theta)
        return self

    def _layer(self, t: int) -> tuple[nn.Linear, nn.Linear]:
        i = 0 if len(self.encoders) == 1 else t
        return self.encoders[i], self.mixers[i]

    def layer_codes(self, x: Tensor) -> list[Tensor]:
        """The codes after each layer, [z_1, …, z_T], each (B, m)."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"LISTA expects signals of shape (batch, {self.dim}), got {got}")
        codes, z = [], None
        for t in range(self.depth):
            enc, mix = self._layer(t)
            v = enc(x) if z is None else enc(x) + mix(z)
            z = soft_threshold(v, self.thresholds[t])
            codes.append(z)
        return codes

    def forward(self, x: Tensor) -> Tensor:
        return self.layer_codes(x)[-1]


LISTAConfig.model_cls = LISTA


@register_model
def lista_nano():
    """LISTA, 8 tied layers, 32-dim signals coded over 64 atoms"""
    return LISTAConfig(dim=32, atoms=64, depth=8)


@register_model
def lista_micro():
    """LISTA, 16 untied layers, 64-dim signals coded over 256 atoms"""
    return LISTAConfig(dim=64, atoms=256, depth=16, tied=False)
