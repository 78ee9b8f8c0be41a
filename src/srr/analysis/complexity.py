"""Sparse rate reduction as a complexity measure and as a regulariser, and classic baselines (see docs/analysis.md).

Tokens of one sample are the rows of Z^ℓ (N × d, the CLS token included); K heads of width p, d = Kp.

* **μ_SRR** (lower is better), averaged over the L layers and over the samples:
  ``μ_SRR = (1/L) Σ_ℓ [ λ‖Z^ℓ‖₀ + R^c(Z^ℓ; U^ℓ) − R(Z^ℓ) ]`` with λ = 0.1, Z^ℓ the output of layer ℓ and U^ℓ that
  layer's tied projection (``model.subspaces()``). ε: by default γ = p/(N ε²) = 1, i.e. **ε = √(p/N)**, so the
  scale inside R is d/(N ε²) = K; pass ``eps`` to fix it instead. By default the LayerNorms inside the layers are
  removed (identity) while the measure is evaluated, as in the study; the patch embedding and the head are untouched.
* **Regulariser**: ``c · (R^c(Z^ℓ; U^ℓ) − R(Z^ℓ))`` for one layer ℓ (the "cheap form"), whose gradient is applied to
  that layer's parameters only (the same as feeding it Z^{ℓ−1}.detach()); ‖·‖₀ has no gradient and is left out.
  The layer runs as in the network (with its LayerNorm).
* Baselines: the squared parameter norm Σ‖w‖²; the path-norm Σ_c f_{w²}(1)_c (every parameter squared, all-ones
  input, LayerNorms removed so that a constant input is not mapped to zero; Jiang et al. 2020); the magnitude-aware
  PAC-Bayes sharpness 1/σ'², σ' the largest σ for which perturbing every weight w by N(0, σ²w²) raises the training
  loss by at most 0.1 (bisection); and 1/margin (10th percentile of the logit margins on training data).
* Rank agreement: Kendall's τ-b of a measure against the generalisation gap over all models, and the granulated
  Ψ = mean over hyper-parameter axes of the mean τ within groups that differ only along that axis.
"""
from __future__ import annotations

import copy
import itertools
import math
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..measures import coding_rate, subspace_compression

__all__ = ["srr_measure", "srr_penalty", "check_srr_layer", "layer_modules", "parameter_norm", "path_norm", "sharpness",
           "inverse_margin", "kendall_tau", "granulated_tau", "without_layernorm", "LAMBDA"]

LAMBDA = 0.1


def _check(model: nn.Module) -> None:
    if not (hasattr(model, "trace") and getattr(model, "subspaces", lambda: None)() is not None):
        raise ConfigError(f"{type(model).__name__} has no tied attention subspaces: SRR is undefined for it")


@contextmanager
def without_layernorm(model: nn.Module, keep=("to_patch_embedding", "mlp_head")):
    """Temporarily make every ``nn.LayerNorm`` of ``model`` the identity, except under the module names ``keep``."""
    hooks = [m.register_forward_hook(lambda mod, inp, out: inp[0]) for name, m in model.named_modules()
             if isinstance(m, nn.LayerNorm) and not name.startswith(tuple(keep))]
    try:
        yield model
    finally:
        for h in hooks:
            h.remove()


def _layer_terms(z: Tensor, u: Tensor, eps: float | None, lam: float | None) -> Tensor:
    """Per sample ``[λ‖Z‖₀] + R^c(Z; U) − R(Z)`` for tokens z (B, N, d) and subspaces u (K, d, p)."""
    n, p = z.shape[-2], u.shape[-1]
    e = math.sqrt(p / n) if eps is None else eps
    terms = subspace_compression(z, u, e) - coding_rate(z, e)
    if lam:
        terms = terms + lam * (z != 0).sum((-2, -1)).to(terms.dtype)
    return terms


@torch.no_grad()
def srr_measure(model: nn.Module, x: Tensor, eps: float | None = None, lam: float = LAMBDA,
                remove_layernorm: bool = True, batch_size: int = 256) -> dict:
    """μ_SRR of ``model`` on inputs ``x``: ``{"mu", "per_layer": [...], "eps", "layernorm"}`` (see the module doc)."""
    _check(model)
    model.eval()
    device = next(model.parameters()).device
    subspaces = [u.detach() for u in model.subspaces()]
    sums = torch.zeros(len(subspaces), dtype=torch.float64)
    ctx = without_layernorm(model) if remove_layernorm else nullcontext(model)
    with ctx:
        for i in range(0, len(x), batch_size):
            records = model.trace(x[i:i + batch_size].to(device))
            for ell, (rec, u) in enumerate(zip(records, subspaces)):
                sums[ell] += _layer_terms(rec["output"].double(), u.double(), eps, lam).sum().cpu()
    per_layer = (sums / len(x)).tolist()
    n = records[0]["output"].shape[-2]
    return {"mu": sum(per_layer) / len(per_layer), "per_layer": per_layer, "lambda": lam,
            "eps": eps if eps is not None else [math.sqrt(u.shape[-1] / n) for u in subspaces],
            "layernorm": "removed" if remove_layernorm else "kept"}


def layer_modules(model: nn.Module) -> nn.ModuleList:
    """The blocks of a transformer (:attr:`~srr.models.TransformerModel.block_list`)."""
    blocks = getattr(model, "block_list", None)
    if not isinstance(blocks, nn.ModuleList):
        raise ConfigError(f"{type(model).__name__} has no blocks")
    return blocks


def check_srr_layer(model: nn.Module, layer: int) -> int:
    """The index (from 0) of ``layer`` (negative: from the end) in ``model``'s blocks; refused when out of range or
    when the model has no tied subspaces."""
    _check(model)
    n = len(layer_modules(model))
    if not -n <= layer < n:
        raise ConfigError(f"--srr-layer {layer} is out of range for a model of {n} layers (-{n} … {n - 1})")
    return layer % n


def srr_penalty(model: nn.Module, x: Tensor, layer: int = -1, eps: float | None = None) -> tuple[Tensor, list]:
    """``(term, params)``: the mean over the batch of ``R^c(Z^ℓ; U^ℓ) − R(Z^ℓ)`` for one layer, and the parameters of
    that layer. The layer runs on its detached input, so the term's gradient reaches that layer's parameters only:
    adding ``c · term`` to a loss is the regulariser of the study."""
    ell = check_srr_layer(model, layer)
    block = layer_modules(model)[ell]
    with torch.no_grad():
        z_in = model.trace(x)[ell]["input"]
    z = block(z_in.detach())
    u = model.subspaces()[ell]
    return _layer_terms(z, u, eps, None).mean(), [p for p in block.parameters() if p.requires_grad]


def parameter_norm(model: nn.Module) -> float:
    """Σ over parameters of ‖w‖² (squared Frobenius norms)."""
    return float(sum(p.detach().double().pow(2).sum() for p in model.parameters()))


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Σ_c f_{w²}(1)_c: the network with every parameter squared, on an all-ones input, LayerNorms removed."""
    twin = copy.deepcopy(model).double().eval()
    for p in twin.parameters():
        p.pow_(2)
    with without_layernorm(twin, keep=()):
        out = twin(torch.ones(1, *input_shape, dtype=torch.float64, device=next(twin.parameters()).device))
    return float(out.sum())


@torch.no_grad()
def _loss(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return float(F.cross_entropy(model(x), y))


@torch.no_grad()
def sharpness(model: nn.Module, x: Tensor, y: Tensor, target: float = 0.1, draws: int = 3, steps: int = 10,
              seed: int = 0) -> float:
    """Magnitude-aware PAC-Bayes sharpness 1/σ'²: bisection on log σ ∈ [1e-4, 2] for the largest σ such that the
    mean over ``draws`` perturbations w + σ|w|·n (n standard normal) raises the loss on (x, y) by ≤ ``target``."""
    model.eval()
    base = _loss(model, x, y)
    params = [p for p in model.parameters()]
    saved = [p.detach().clone() for p in params]
    g = torch.Generator().manual_seed(seed)

    def rise(sigma: float) -> float:
        total = 0.0
        for _ in range(draws):
            for p, w in zip(params, saved):
                p.copy_(w + sigma * w.abs() * torch.randn(w.shape, generator=g).to(w))
            total += _loss(model, x, y) - base
        for p, w in zip(params, saved):
            p.copy_(w)
        return total / draws

    lo, hi = math.log(1e-4), math.log(2.0)
    if rise(math.exp(hi)) <= target:
        return 1.0 / math.exp(hi) ** 2
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rise(math.exp(mid)) <= target else (lo, mid)
    return 1.0 / math.exp(lo) ** 2


@torch.no_grad()
def inverse_margin(model: nn.Module, x: Tensor, y: Tensor, quantile: float = 0.1) -> float:
    """1 / (``quantile`` of the margins ``f_y − max_{c≠y} f_c`` on (x, y)); infinite when that margin is ≤ 0."""
    logits = model.eval()(x)
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    m = float(torch.quantile((true - other).double(), quantile))
    return 1.0 / m if m > 0 else float("inf")


def kendall_tau(a, b) -> float | None:
    """Kendall's τ-b of two sequences (ties in either reduce the denominator); ``None`` for fewer than 2 values or a
    constant sequence."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b):
        raise ConfigError(f"kendall_tau needs sequences of equal length, got {len(a)} and {len(b)}")
    s, ta, tb = 0.0, 0, 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        sa, sb = (da > 0) - (da < 0), (db > 0) - (db < 0)
        s += sa * sb
        ta += sa != 0
        tb += sb != 0
    return s / math.sqrt(ta * tb) if ta and tb else None


def granulated_tau(rows: list[dict], axes: list[str], measure: str, gap: str = "gap") -> dict:
    """Granulated Kendall Ψ (Jiang et al. 2020): for each axis, the mean τ over the groups of models that share every
    other axis value; Ψ is the mean over the axes. Returns ``{"psi": Ψ, "per_axis": {axis: ψ}}``."""
    per_axis = {}
    for axis in axes:
        groups: dict[tuple, list[dict]] = {}
        for r in rows:
            groups.setdefault(tuple(r[a] for a in axes if a != axis), []).append(r)
        taus = [kendall_tau([r[measure] for r in g], [r[gap] for r in g]) for g in groups.values() if len(g) > 1]
        taus = [t for t in taus if t is not None]
        per_axis[axis] = sum(taus) / len(taus) if taus else None
    vals = [v for v in per_axis.values() if v is not None]
    return {"psi": sum(vals) / len(vals) if vals else None, "per_axis": per_axis}
