"""One ReduNet layer, constructed in closed form from features and labels (see docs/models.md).

Vector form (``spatial=()``): features ``z ∈ R^d`` (d = ``channels``), unit norm. Construction from m training
features Z (m × d) with labels:

    α = d/(m ε²),   E = α (I + α ZᵀZ)⁻¹,   α_j = d/(m_j ε²),   C_j = α_j (I + α_j Z_jᵀ Z_j)⁻¹,   γ_j = m_j/m.

Forward, for any sample (no label needed):

    π̂_j(z) = softmax_j(−λ ‖C_j z‖),   z ← normalise(z + η (E z − Σ_j γ_j π̂_j(z) C_j z)).

Shift-invariant form (``spatial=(T,)`` or ``(H, W)``): a feature is a multichannel signal z (C × T, or C × H × W) and
the operators are block-circulant, i.e. diagonal in frequency. With the orthonormal DFT ``v = FFT(z)`` (so that
‖v‖ = ‖z‖), at every frequency t one C × C complex Hermitian operator is formed:

    α = C/(m ε²),   E_t = α (I + α Σ_i v_i(t) v_i(t)ᴴ)⁻¹,   C_{j,t} likewise over class j with α_j = C/(m_j ε²),

and ``E z`` is ``IFFT(E_t v(t))``. This equals the block-circulant operator of the signal domain with α/T inside the
inverse (:func:`srr.redunet.circulant.block_circulant_operator`): T inversions of C × C instead of one CT × CT.
The vector form is the case of no spatial axis (one "frequency", C = d); both share this code. Every layer maps
real signal-domain features to real signal-domain features (an FFT in, an inverse FFT out), normalising over the
whole feature (Parseval: the norm is the same in both domains). The official code stays in the Fourier domain
between layers; the two agree up to round-off because the operators of real signals are conjugate-symmetric.

``eps`` is ε, not ε²: the official ReduNet code calls ε² ``eps`` (its default ``eps=0.1`` is ``eps=sqrt(0.1)``
here). Defaults follow the official code: η = 0.5, ε² = 0.1, λ = 500.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import check_allocation, check_eps, check_finite, check_int, check_number
from ..errors import ConfigError, DataError
from .operators import check_labels, class_grams, class_operators, regularized_inverse

__all__ = ["ReduLayer", "normalize_features", "check_layer_args", "DEFAULT_EPS", "DEFAULT_ETA", "DEFAULT_LAM"]

DEFAULT_ETA, DEFAULT_EPS, DEFAULT_LAM = 0.5, math.sqrt(0.1), 500.0


def normalize_features(z: Tensor) -> Tensor:
    """Scale every sample (first axis) to unit Euclidean norm over all its other axes."""
    norm = z.flatten(1).norm(dim=1).clamp_min(1e-12)
    return z / norm.view(-1, *([1] * (z.dim() - 1)))


def check_layer_args(channels, num_classes, spatial, eta, eps, lam, dtype, layers: int = 1) -> dict:
    """The arguments of :class:`ReduLayer`, checked: positive integer sizes, at most two spatial axes, finite positive
    η and λ, ε as :func:`srr.checks.check_eps`, dtype float32 or float64; and the memory of the operators E and C_j
    of ``layers`` layers (K + 1 operators of F × C × C, complex for signals) compared with what the machine can give
    before any is allocated."""
    channels = check_int(channels, "channels", low=1)
    num_classes = check_int(num_classes, "num_classes", low=1)
    if isinstance(spatial, (str, bytes)) or not hasattr(spatial, "__len__") or len(spatial) > 2:
        raise ConfigError(f"spatial must be (), (T,) or (H, W), got {spatial!r}")
    spatial = tuple(check_int(s, "spatial size", low=1) for s in spatial)
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"a ReduNet computes in torch.float32 or torch.float64, got dtype={dtype!r}")
    args = {"channels": channels, "num_classes": num_classes, "spatial": spatial, "dtype": dtype,
            "eta": check_number(eta, "eta", low=0.0, low_open=True), "eps": check_eps(eps),
            "lam": check_number(lam, "lam", low=0.0, low_open=True)}
    size = (2 if spatial else 1) * torch.empty((), dtype=dtype).element_size()
    check_allocation(layers * (num_classes + 1) * math.prod(spatial) * channels**2 * size,
                     lambda: f"ReduNet operators of {layers} layer(s): {num_classes + 1:,} (num_classes + 1) × "
                     f"{math.prod(spatial):,} frequencies × {channels} × {channels} channels")
    return args


class ReduLayer(nn.Module):
    """A ReduNet layer on features of shape (m, channels, *spatial); ``spatial=()`` is the vector form.

    Parameters ``E`` (F, C, C) and ``Cs`` (K, F, C, C), F the number of frequencies (1 for vectors), are set by
    :meth:`construct`; they are ``nn.Parameter`` so that the constructed network can be fine-tuned by
    back-propagation. ``gamma`` (K,) and ``present`` (K,) are buffers.
    """

    def __init__(self, channels: int, num_classes: int, spatial: tuple[int, ...] = (), eta: float = DEFAULT_ETA,
                 eps: float = DEFAULT_EPS, lam: float = DEFAULT_LAM, dtype: torch.dtype = torch.float32):
        super().__init__()
        a = check_layer_args(channels, num_classes, spatial, eta, eps, lam, dtype)
        channels, num_classes, spatial = a["channels"], a["num_classes"], a["spatial"]
        self.channels, self.num_classes, self.spatial = channels, num_classes, spatial
        self.eta, self.eps, self.lam = a["eta"], a["eps"], a["lam"]
        self.real_dtype = dtype
        op_dtype = (torch.complex128 if dtype == torch.float64 else torch.complex64) if spatial else dtype
        nf, c = math.prod(spatial), self.channels
        self.E = nn.Parameter(torch.zeros(nf, c, c, dtype=op_dtype))
        self.Cs = nn.Parameter(torch.zeros(num_classes, nf, c, c, dtype=op_dtype))
        self.register_buffer("gamma", torch.zeros(num_classes, dtype=dtype))
        self.register_buffer("present", torch.zeros(num_classes, dtype=torch.bool))

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, spatial={self.spatial}, num_classes={self.num_classes}, "
                f"eta={self.eta}, eps={self.eps:.4g}, lam={self.lam}")

    # -- the frequency domain ------------------------------------------------------------------------------------
    @property
    def _dims(self) -> tuple[int, ...]:
        return tuple(range(-len(self.spatial), 0))

    def to_frequency(self, z: Tensor) -> Tensor:
        """(m, C, *spatial) real → (m, C, F): the orthonormal DFT over the spatial axes (identity for vectors)."""
        if self.spatial:
            z = torch.fft.fftn(z, dim=self._dims, norm="ortho")
        return z.reshape(z.shape[0], self.channels, -1)

    def from_frequency(self, v: Tensor) -> Tensor:
        """(m, C, F) → (m, C, *spatial) real: the inverse of :meth:`to_frequency`."""
        v = v.reshape(v.shape[0], self.channels, *self.spatial)
        if self.spatial:
            v = torch.fft.ifftn(v, dim=self._dims, norm="ortho").real
        return v

    def check_input(self, z: Tensor) -> Tensor:
        shape = (self.channels, *self.spatial)
        if not torch.is_tensor(z):
            raise DataError(f"ReduNet layer expects a tensor of features, got {type(z).__name__}")
        if z.dim() != 1 + len(shape) or tuple(z.shape[1:]) != shape:
            raise DataError(f"ReduNet layer expects features of shape (m, {', '.join(map(str, shape))}), "
                            f"got {tuple(z.shape)}")
        check_finite(z, "features")
        return z

    # -- construction --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def construct(self, z: Tensor, labels: Tensor) -> None:
        """Set E, C_j and γ_j from training features ``z`` (unit norm, shape (m, C, *spatial)) and their labels.

        Computed in double precision, stored in the layer's precision.
        """
        z = self.check_input(z)
        m = z.shape[0]
        if m == 0:
            raise DataError("cannot construct a ReduNet layer from zero samples")
        labels = check_labels(labels, m, self.num_classes).to(z.device)
        nf, c, k = math.prod(self.spatial), self.channels, self.num_classes
        # in complex128 (float64 for vectors): the features, the class Gram matrices and their inverses' workspace
        check_allocation((m * c * nf + 4 * (k + 1) * nf * c * c) * (16 if self.spatial else 8),
                         lambda: f"ReduNet construction: {k:,} classes × {nf:,} frequencies × {c} × {c} operators "
                         f"for {m:,} samples", z.device)
        v = self.to_frequency(z.to(torch.float64))  # (m, C, F), complex128 for signals
        counts = torch.bincount(labels, minlength=self.num_classes)
        grams = class_grams(v, labels, self.num_classes)  # (K, F, C, C)
        scale = self.channels / self.eps**2
        e = regularized_inverse(grams.sum(0), scale / m)
        cs, present = class_operators(grams, counts, scale)
        self.E.copy_(e.to(self.E.dtype))
        self.Cs.copy_(cs.to(self.Cs.dtype))
        self.gamma.copy_((counts.to(torch.float64) / m).to(self.gamma.dtype))
        self.present.copy_(present)

    # -- forward -------------------------------------------------------------------------------------------------
    def memberships_and_step(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The soft memberships π̂ (m, K) and the next features (m, C, *spatial)."""
        z = self.check_input(z).to(self.real_dtype)
        self._check_step_memory(len(z))
        v = self.to_frequency(z).to(self.E.dtype).permute(2, 1, 0)  # (F, C, m): one C × m block per frequency
        ez = self.E @ v
        cz = self.Cs @ v.unsqueeze(0)  # (K, F, C, m)
        pi = self.soft_memberships(cz)
        weights = (self.gamma.view(-1, 1) * pi.mT).to(cz.dtype)  # (K, m): γ_j π̂_j(z)
        comp = (cz * weights[:, None, None, :]).sum(0)
        step = self.from_frequency((v + self.eta * (ez - comp)).permute(2, 1, 0))
        return pi, normalize_features(step)

    def _check_step_memory(self, m: int) -> None:
        """The compressed features C_j z of all classes, (K, F, C, m), and their weighted copy must fit."""
        size = torch.empty((), dtype=self.E.dtype).element_size()
        check_allocation(2 * self.num_classes * math.prod(self.spatial) * self.channels * m * size,
                         lambda: f"ReduNet layer: C_j z of {self.num_classes:,} classes for a chunk of {m:,} samples "
                         "(the chunk argument)", self.E.device)

    def soft_memberships(self, cz: Tensor) -> Tensor:
        """``π̂_j = softmax_j(−λ ‖C_j z‖)`` (m, K) from the compressed features ``cz`` (K, F, C, m); classes without
        training samples get membership 0."""
        return torch.softmax(self._logits(cz), dim=0).mT

    def _logits(self, cz: Tensor) -> Tensor:
        sq = cz.real.square() + cz.imag.square() if cz.is_complex() else cz.square()
        norms = sq.sum(dim=(1, 2)).sqrt()  # (K, m); by Parseval, the signal-domain norm
        return (-self.lam * norms).masked_fill(~self.present.view(-1, 1), float("-inf"))

    def membership_logits(self, z: Tensor) -> Tensor:
        """``−λ ‖C_j z‖`` (m, K), −inf for classes without training samples: the logits of π̂ (differentiable)."""
        z = self.check_input(z).to(self.real_dtype)
        self._check_step_memory(len(z))
        v = self.to_frequency(z).to(self.E.dtype).permute(2, 1, 0)
        return self._logits(self.Cs @ v.unsqueeze(0)).mT

    def forward(self, z: Tensor) -> Tensor:
        return self.memberships_and_step(z)[1]

