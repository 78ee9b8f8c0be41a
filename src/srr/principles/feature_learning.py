"""Feature learning: a Recursive Feature Machine, and the per-layer alignment statistics of a trained network
(docs/principles.md; the AGOP and G of every linear map come from :mod:`srr.analysis.ansatz`).

**Recursive Feature Machine** (srr's own few lines; ``xrfm`` is the maintained package). A kernel machine with the
Laplace kernel of a learned metric M (d × d, positive semi-definite):

    K_M(x, z) = exp(−‖x − z‖_M / L),   ‖v‖_M = √(vᵀ M v)
    f(x) = Σ_i α_i K_M(x, x_i),        α = (K_M + ρ I)⁻¹ Y              (kernel ridge regression on targets Y, n × c)
    AGOP = (1/n) Σ_j Σ_c ∇f_c(x_j) ∇f_c(x_j)ᵀ,   ∇_x K_M(x, x_i) = −K_M(x, x_i) M (x − x_i) / (L ‖x − x_i‖_M)
    M ← AGOP^power / max |AGOP^power|                                  (M₀ = I; ``iterations`` rounds)

The term of x_i = x (distance 0) is left out of the gradient (the kernel is not differentiable there).

**Alignment of a layer** p = W h with the gradients g = ∂f_c/∂p of the outputs (:func:`layer_alignment`), from
G = (1/n) Σ g gᵀ and the centred covariance C of the same gradients:

* ansatz: Pearson(WᵀW, AGOP^α), AGOP = Wᵀ G W, α = ½ and 1;
* G ∝ I (the power-1 ansatz, for W of full row rank): the tight-frame statistics of G — ``distance``
  ``‖G/tr G − I/k‖_F``, the same normalised by its largest value √(1 − 1/k), and λ_min/λ_max;
* G ∝ W Wᵀ (the power-½ ansatz): ``distance`` ``‖G/tr G − W Wᵀ/tr W Wᵀ‖_F`` (comparable with the distance from
  I/k, both trace-normalised); the tight-frame statistics of G whitened by W Wᵀ on the range of W,
  Σ⁻¹ Uᵀ G U Σ⁻¹ (W = U Σ Vᵀ, rank r), which is ∝ I_r iff G ∝ W Wᵀ there — a strict test, dominated by the
  directions of the small singular values of W; ``outside_range``, the fraction of tr G outside the range of W
  (0 when W has full row rank); and Pearson(G, W Wᵀ);
* left singular vectors: Pearson(W Wᵀ, C^α), α = ½ and 1 — whether the left singular vectors of W are the
  principal directions of the (centred) pre-activation gradients, the counterpart of the ansatz, which is about the
  right singular vectors (None when the gradients do not vary: tr C ≤ 10⁻⁹ tr G).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..analysis.ansatz import _kind, gradient_moments, matrix_power, pearson, tight_frame_statistics
from ..checks import check_finite, check_int, check_labels, check_memory, check_number
from ..errors import ConfigError, DataError

__all__ = ["RFM", "rfm", "laplace_kernel", "kernel_agop", "whitened_frame", "layer_alignment"]


def _distances(x: Tensor, z: Tensor, M: Tensor) -> Tensor:
    """‖x_i − z_j‖_M, (len(x), len(z))."""
    xm, zm = x @ M, z @ M
    sq = (xm * x).sum(1, keepdim=True) + (zm * z).sum(1).unsqueeze(0) - 2 * xm @ z.T
    return sq.clamp_min(0).sqrt()


def laplace_kernel(x: Tensor, z: Tensor, M: Tensor, bandwidth: float) -> Tensor:
    """K_M(x_i, z_j) = exp(−‖x_i − z_j‖_M / L), (len(x), len(z))."""
    for t, name in ((x, "x"), (z, "z"), (M, "M")):
        check_finite(t, name)
    if x.dim() != 2 or z.dim() != 2 or x.shape[1] != z.shape[1] or tuple(M.shape) != (x.shape[1], x.shape[1]):
        raise ConfigError(f"x (n, d), z (m, d) and M (d, d) are needed, got {tuple(x.shape)}, {tuple(z.shape)} and "
                          f"{tuple(M.shape)}")
    bandwidth = check_number(bandwidth, "bandwidth", low=0.0, low_open=True, high=1e12)
    return torch.exp(-_distances(x, z, M) / bandwidth)


def kernel_agop(x: Tensor, centers: Tensor, alpha: Tensor, M: Tensor, bandwidth: float,
                batch_size: int = 256) -> Tensor:
    """AGOP (d × d) of f(·) = Σ_i α_i K_M(·, centers_i) over the rows of x (all outputs summed, mean over rows)."""
    bandwidth = check_number(bandwidth, "bandwidth", low=0.0, low_open=True, high=1e12)
    batch_size = check_int(batch_size, "batch_size", low=1, high=1 << 20)
    for t, name in ((x, "x"), (centers, "centers"), (alpha, "alpha"), (M, "M")):
        check_finite(t, name)
    n, d = x.shape
    out = torch.zeros(d, d, dtype=x.dtype)
    for i in range(0, n, batch_size):
        xb = x[i:i + batch_size]
        dist = _distances(xb, centers, M)
        q = torch.where(dist > 1e-10 * bandwidth, torch.exp(-dist / bandwidth) / dist.clamp_min(1e-300),
                        torch.zeros((), dtype=x.dtype))  # K/‖·‖_M, the distance-0 term left out
        first = xb.unsqueeze(1) * (q @ alpha).unsqueeze(-1)  # (B, c, d): x Σ_i q_i α_ic
        second = torch.einsum("bn,nc,nd->bcd", q, alpha, centers)  # Σ_i q_i α_ic x_i
        grads = -(first - second) @ M / bandwidth  # (B, c, d)
        flat = grads.reshape(-1, d)
        out += flat.T @ flat
    return out / n


@dataclass
class RFM:
    """A fitted Recursive Feature Machine: ``M``, the ``centers`` and coefficients ``alpha``, and the history."""

    M: Tensor
    centers: Tensor
    alpha: Tensor
    bandwidth: float
    history: list = field(default_factory=list)

    def predict(self, x: Tensor) -> Tensor:
        """f(x) (n, c)."""
        check_finite(x, "x")
        x = x.reshape(len(x), -1).to(self.centers.dtype)
        if x.shape[1] != self.centers.shape[1]:
            raise DataError(f"the RFM takes inputs of {self.centers.shape[1]} values, got {x.shape[1]}")
        return laplace_kernel(x, self.centers, self.M, self.bandwidth) @ self.alpha


def _solve(K: Tensor, y: Tensor, reg: float) -> Tensor:
    return torch.linalg.solve(K + reg * torch.eye(len(K), dtype=K.dtype), y)


def rfm(x: Tensor, y: Tensor, iterations: int = 5, bandwidth: float = 10.0, reg: float = 1e-3, power: float = 1.0,
        x_test: Tensor | None = None, y_test: Tensor | None = None, num_classes: int | None = None) -> RFM:
    """Fit a Recursive Feature Machine (module docstring) on inputs x (n, …) with integer labels y (one-hot targets)
    or real targets y (n, c), in float64. With a test split, each round records the test accuracy or MSE."""
    check_finite(x, "x")
    if x.dim() < 2 or not len(x) or not x[0].numel():
        raise DataError(f"rfm needs one or more inputs of one or more values, got shape {tuple(x.shape)}")
    x = x.reshape(len(x), -1).double()
    n, d = x.shape
    iterations = check_int(iterations, "iterations", low=0, high=1000)
    bandwidth = check_number(bandwidth, "bandwidth", low=0.0, low_open=True, high=1e12)
    reg = check_number(reg, "reg", low=0.0, high=1e12)
    power = check_number(power, "power", low=0.0, low_open=True, high=16.0)
    check_memory(8 * (3 * n * n + 2 * d * d + 256 * n * 4), f"an RFM on {n} samples of {d} values")
    classify = not torch.is_floating_point(y)
    if classify:
        y, k = check_labels(y, num_classes, count=n)  # a class count of 1e9 would build a 1e9-column target
        check_memory(8 * n * k, f"one-hot targets of {n} samples x {k} classes")
        targets = torch.nn.functional.one_hot(y.long(), k).double()
    else:
        check_finite(y, "y")
        if len(y) != n:
            raise DataError(f"{n} inputs but {len(y)} targets")
        targets = y.reshape(n, -1).double()
    if len(targets) != n:
        raise DataError(f"{n} inputs but {len(targets)} targets")
    if (x_test is None) != (y_test is None):
        raise ConfigError("x_test and y_test go together")
    if y_test is not None and len(y_test) != len(x_test):
        raise DataError(f"{len(x_test)} test inputs but {len(y_test)} test targets")
    M, history = torch.eye(d, dtype=torch.float64), []
    for t in range(iterations + 1):
        alpha = _solve(laplace_kernel(x, x, M, bandwidth), targets, reg)
        model = RFM(M, x, alpha, bandwidth, history)
        row = {"round": t}
        if x_test is not None and y_test is not None:
            pred = model.predict(x_test)
            row["test_accuracy" if classify else "test_mse"] = (
                float((pred.argmax(1) == y_test).double().mean()) if classify
                else float((pred - y_test.reshape(len(pred), -1).double()).square().sum(1).mean()))
        history.append(row)
        if t == iterations:
            return model
        agop = matrix_power(kernel_agop(x, x, alpha, M, bandwidth), power)
        top = float(agop.abs().max())
        if not top > 0:
            raise ConfigError("the kernel predictor is constant (its AGOP is zero); lower the bandwidth or reg")
        M = agop / top
    raise AssertionError("unreachable")  # pragma: no cover


def whitened_frame(G: Tensor, W: Tensor, rtol: float = 1e-8) -> dict:
    """Tight-frame statistics of G whitened by W Wᵀ on the range of W (see the module docstring)."""
    check_finite(G, "G")
    check_finite(W, "W")
    if G.dim() != 2 or W.dim() != 2 or G.shape[0] != G.shape[1] or G.shape[0] != W.shape[0]:
        raise ConfigError(f"G (d, d) and W (d, k) are needed, got {tuple(G.shape)} and {tuple(W.shape)}")
    rtol = check_number(rtol, "rtol", low=0.0, low_open=True, high=1.0)
    G, W = G.double(), W.double()
    U, S, _ = torch.linalg.svd(W, full_matrices=False)
    keep = S > rtol * S.max() if len(S) and S.max() > 0 else torch.zeros(len(S), dtype=torch.bool)
    U, S = U[:, keep], S[keep]
    trace = float(torch.trace(G))
    if len(S) == 0 or not trace > 0:
        return {"frame_distance_normalised": None, "eig_ratio": None, "outside_range": None, "rank": int(len(S))}
    inside = U.T @ G @ U
    white = inside / S.unsqueeze(0) / S.unsqueeze(1)
    stats = tight_frame_statistics(white)
    return {"frame_distance_normalised": stats["frame_distance_normalised"], "eig_ratio": stats["eig_ratio"],
            "outside_range": max(0.0, 1 - float(torch.trace(inside)) / trace), "rank": int(len(S))}


def _trace_distance(a: Tensor, b: Tensor) -> float | None:
    """‖A/tr A − B/tr B‖_F (with B = I/k … this is the frame distance of A); None when a trace is not positive."""
    ta, tb = float(torch.trace(a)), float(torch.trace(b))
    return float(torch.linalg.matrix_norm(a / ta - b / tb)) if ta > 0 and tb > 0 else None


def _initial_weight(init: nn.Module, name: str) -> Tensor:
    """The weight of map ``name`` (``….weight``, ``….weight.T``, ``#2`` for a later use) in the model ``init``."""
    base = name.split("#")[0]
    w0 = dict(init.named_parameters())[base.removesuffix(".T")].detach().double()
    return w0.t() if base.endswith(".T") else w0


def layer_alignment(model: nn.Module, x: Tensor, alphas=(0.5, 1.0), batch_size: int = 250,
                    init: nn.Module | None = None) -> list[dict]:
    """Per linear map of ``model`` on inputs ``x``: ``name``, ``kind``, ``shape``, ``ansatz`` {α: Pearson(WᵀW,
    AGOP^α)}, ``identity`` (the statistics of G ∝ I), ``wwt`` (of G ∝ W Wᵀ, with ``corr`` = Pearson(G, W Wᵀ)),
    ``left`` {α: Pearson(W Wᵀ, C^α)}; with ``init`` (the same architecture at initialisation) also
    ``ansatz_minus_init`` {α: Pearson((W − W₀)ᵀ(W − W₀), AGOP^α)}."""
    alphas = tuple(check_number(a, "alpha", low=0.0, low_open=True, high=16.0) for a in alphas)
    if not alphas:
        raise ConfigError("alphas needs at least one power")
    batch_size = check_int(batch_size, "batch_size", low=1, high=1 << 20)
    check_finite(x, "x")
    rows = []
    for name, m in gradient_moments(model, x, batch_size).items():
        W, G, C = m["weight"].double(), m["G"], m["C"]
        nfm, wwt, agop = W.mT @ W, W @ W.mT, W.mT @ G @ W
        powers = {a: matrix_power(agop, a) for a in alphas}
        frame = tight_frame_statistics(G, W)
        varies = float(torch.trace(C)) > 1e-9 * float(torch.trace(G))  # else C is round-off: no left statistic
        rows.append({
            "name": name, "kind": _kind(name, model), "shape": list(W.shape),
            "ansatz": {str(a): pearson(nfm, powers[a]) for a in alphas},
            "identity": {"distance": frame["frame_distance"],
                         "frame_distance_normalised": frame["frame_distance_normalised"],
                         "eig_ratio": frame["eig_ratio"]},
            "wwt": {"distance": _trace_distance(G, wwt), **whitened_frame(G, W), "corr": frame["corr_G_WWt"]},
            "left": {str(a): pearson(wwt, matrix_power(C, a)) if varies else None for a in alphas},
        })
        if init is not None:
            delta = W - _initial_weight(init, name)
            rows[-1]["ansatz_minus_init"] = {str(a): pearson(delta.mT @ delta, powers[a]) for a in alphas}
    return rows
