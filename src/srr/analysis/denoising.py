"""Layers as denoisers on synthetic subspace data: per-layer SNR and compression (see docs/analysis.md).

Tokens come from a noisy mixture of K low-rank Gaussians (:func:`srr.data.token_sets`): token j of class k is
``z_j = U_k a_j + σ n_j``. With P_k = U_k U_kᵀ the projector on the true subspace of its class, the layer's SNR is

    SNR(Z) = sqrt( Σ_j ‖P_{k_j} z_j‖² / Σ_j ‖(I − P_{k_j}) z_j‖² )     (pooled over all tokens of all sets)

— infinite (and flagged ``noise_free``) when the off-subspace energy is below 1e-12 of the on-subspace energy.

Layers, all with the subspaces set to the true ones (``qkv.weight`` rows of head k = U_kᵀ, output through
[U_1 … U_K] itself: :class:`~srr.operators.MSSA` with ``output="subspace"`` and ``dim_head`` = rank):

* **AoT** (tokens in rows): ``Z ← Z + η Σ_k softmax(β W_k W_kᵀ) W_k U_kᵀ`` with ``W_k = Z U_k``, no
  LayerNorm (it would rescale the SNR away); β = 1 is the AoT formula, MSSA's √p scaling is β = p^-½.
* **AoT, hard-thresholded** (the theorem's operator): the same with every attention weight below τ set to 0. Then a
  token's own weight, when it passes the threshold, adds at least η·τ times its signal, and the cross-class weights
  that carry noise are cut: the theorem's growth per layer is (1 + ητ). We print it next to the measured ratio.
  τ must exceed the uniform weight 1/N to cut anything (a head's attention from a token with zero coordinates in
  that head is uniform).
* **AoT with LayerNorm**: the registry's layer (:class:`~srr.models.aot.AoTBlock`, ``Z + η·MSSA(LN(Z))``,
  MSSA's softmax scale p^-½, the LayerNorm at its initial affine parameters 1 and 0).
* **CRATE** (the authors' layer, :class:`~srr.models.crate.CRATEBlock`): pre-norm MSSA with the true U, then
  ISTA with the dictionary D = I (so the step is the non-negative soft threshold ReLU(x − ηλ)).

Compression per layer: R^c(Z^ℓ | U_true) in the authors' measurement (tokens L2-normalised within each head,
ε = 0.1) and the class-wise rate R^c(Z^ℓ, ε = 0.5 | Π) of the L2-normalised tokens with their true labels.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from ..measures import compressed_rate, subspace_compression
from ..operators import MSSA

__all__ = ["snr", "true_mssa", "aot_step", "crate_layers", "aot_layers", "denoising_curves", "plot_denoising",
           "NOISE_FREE", "synthetic_report"]

NOISE_FREE = 1e-12


def snr(z: Tensor, labels: Tensor, bases: list[Tensor]) -> dict:
    """``{"snr", "signal", "noise", "noise_free"}`` of tokens z (…, N, d) with class labels (…, N) and bases (d, r_k)."""
    z = z.double().reshape(-1, z.shape[-1])
    labels = labels.reshape(-1)
    if len(z) != len(labels):
        raise ConfigError(f"{len(z)} tokens but {len(labels)} labels")
    signal = noise = 0.0
    for k, u in enumerate(bases):
        zk = z[labels == k]
        if len(zk) == 0:
            continue
        proj = zk @ u.double() @ u.double().T
        signal += float(proj.pow(2).sum())
        noise += float((zk - proj).pow(2).sum())
    free = noise <= NOISE_FREE * max(signal, 1e-300)
    return {"snr": math.inf if free else math.sqrt(signal / noise), "signal": signal, "noise": noise,
            "noise_free": bool(free)}


def _set_true(op: MSSA, bases: list[Tensor]) -> MSSA:
    with torch.no_grad():
        op.qkv.weight.copy_(torch.cat(bases, dim=1).T)  # rows of head k: U_kᵀ
    return op.eval()


def true_mssa(bases: list[Tensor], step: float = 1.0) -> MSSA:
    """An MSSA (``output="subspace"``) whose heads project on the orthonormal bases (d, p) and whose output is
    ``step · A [U_1 … U_K]ᵀ``."""
    ranks = {u.shape[1] for u in bases}
    if len(ranks) != 1:
        raise ConfigError(f"MSSA heads need one width; the subspace ranks are {sorted(ranks)}")
    d, p = bases[0].shape
    return _set_true(MSSA(d, heads=len(bases), dim_head=p, output="subspace", step=step), bases)


@torch.no_grad()
def aot_step(z: Tensor, op: MSSA, eta: float, beta: float = 1.0, tau: float | None = None) -> Tensor:
    """One AoT layer ``Z + η Σ_k φ(softmax(β W_k W_kᵀ)) W_k U_kᵀ``; φ zeroes weights below ``tau`` when given."""
    w = op.project(z)  # (B, K, N, p)
    attn = torch.softmax(beta * (w @ w.transpose(-2, -1)), dim=-1)
    if tau is not None:
        attn = attn * (attn >= tau)
    mixed = (attn @ w).transpose(1, 2).reshape(z.shape[0], z.shape[1], -1)
    return z + eta * (mixed @ op.qkv.weight)  # A [U_1 … U_K]ᵀ


def crate_layers(bases: list[Tensor], depth: int, step_size: float = 0.1, lambd: float = 0.1):
    """``depth`` CRATE blocks (:class:`~srr.models.crate.CRATEBlock`) with the true subspaces in MSSA (``to_out`` =
    [U_1 … U_K], no bias) and D = I in ISTA."""
    from ..models.crate import CRATEBlock, CRATEConfig

    d, p = bases[0].shape
    config = CRATEConfig(dim=d, depth=depth, heads=len(bases), dim_head=p, step_size=step_size, lambd=lambd)
    net = torch.nn.ModuleList(CRATEBlock(config) for _ in range(depth))
    with torch.no_grad():
        for block in net:
            _set_true(block.attention, bases)
            block.attention.to_out[0].weight.copy_(torch.cat(bases, dim=1))
            block.attention.to_out[0].bias.zero_()
            block._modules["1"].fn.weight.copy_(torch.eye(d))
    return net.eval()


def aot_layers(bases: list[Tensor], depth: int, eta: float):
    """``depth`` AoT blocks (:class:`~srr.models.aot.AoTBlock`: ``x + η·MSSA(LN(x))``, output through U) with the
    true subspaces."""
    from ..models.aot import AoTBlock, AoTConfig

    d, p = bases[0].shape
    config = AoTConfig(dim=d, depth=depth, heads=len(bases), dim_head=p, attn_output="subspace", step=eta)
    net = torch.nn.ModuleList(AoTBlock(config) for _ in range(depth))
    for block in net:
        _set_true(block.attention, bases)
    return net.eval()


def _rates(z: Tensor, labels: Tensor, u: Tensor) -> dict:
    zn = torch.nn.functional.normalize(z.double(), dim=-1)
    rc_u = subspace_compression(z.double(), u.double(), 0.1, normalize=True).mean()
    rc_pi = torch.stack([compressed_rate(zn[i], labels[i], 0.5) for i in range(len(z))]).mean()
    return {"rc_subspaces": float(rc_u), "rc_classes": float(rc_pi)}


@torch.no_grad()
def denoising_curves(z: Tensor, labels: Tensor, bases: list[Tensor], depth: int = 6, eta: float = 0.5,
                     tau: float = 0.1, beta: float = 1.0) -> dict:
    """Per layer (0 = input): SNR and compression through AoT (softmax, hard threshold τ, LayerNorm) and CRATE.

    Returns ``{"settings", "predicted_ratio": 1 + ητ, "curves": {name: [row per layer]}}``; every row holds ``snr``,
    ``ratio`` (SNR^ℓ / SNR^{ℓ−1}), ``noise_free``, ``rc_subspaces`` and ``rc_classes``.
    """
    if depth < 1 or eta <= 0 or not 0 < tau < 1:
        raise ConfigError(f"need depth >= 1, eta > 0 and 0 < tau < 1; got {depth}, {eta}, {tau}")
    op = true_mssa(bases)
    u = torch.stack(bases)  # (K, d, p)
    crate = crate_layers(bases, depth)
    aot = aot_layers(bases, depth, eta)
    steps = {
        "aot_softmax": lambda x, ell: aot_step(x, op, eta, beta),
        "aot_threshold": lambda x, ell: aot_step(x, op, eta, beta, tau),
        "aot_layernorm": lambda x, ell: aot[ell](x),
        "crate": lambda x, ell: crate[ell](x),
    }
    curves = {}
    for name, step in steps.items():
        x, rows = z.float(), []
        for ell in range(depth + 1):
            if ell:
                x = step(x, ell - 1)
            s = snr(x, labels, bases)
            prev = rows[-1]["snr"] if rows else None
            ratio = s["snr"] / prev if prev and math.isfinite(prev) and math.isfinite(s["snr"]) else None
            rows.append({"layer": ell, **s, "ratio": ratio, **_rates(x, labels, u)})
        curves[name] = rows
    return {"settings": {"depth": depth, "eta": eta, "tau": tau, "beta": beta, "tokens": list(z.shape)},
            "predicted_ratio": 1 + eta * tau, "curves": curves}


def plot_denoising(result: dict, path, title: str = "") -> None:
    """Two panels against the layer: SNR (log scale) of every curve with the predicted SNR_0 (1 + ητ)^ℓ, and R^c."""
    from .plotting import pyplot, save_png

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, rows in result["curves"].items():
        finite = [r for r in rows if math.isfinite(r["snr"])]
        a1.plot([r["layer"] for r in finite], [r["snr"] for r in finite], marker="o", label=name)
        a2.plot([r["layer"] for r in rows], [r["rc_classes"] for r in rows], marker="o", label=name)
    first = next(iter(result["curves"].values()))
    if math.isfinite(first[0]["snr"]):
        layers = [r["layer"] for r in first]
        a1.plot(layers, [first[0]["snr"] * result["predicted_ratio"] ** ell for ell in layers], "k--",
                label=f"predicted (1 + ητ)^ℓ = {result['predicted_ratio']:.3f}^ℓ")
    a1.set(yscale="log", xlabel="layer", ylabel="SNR", title="signal-to-noise ratio of the tokens")
    a2.set(xlabel="layer", ylabel=r"$R^c(Z^\ell, \epsilon=0.5 \mid \Pi)$", title="class-wise compression (lower: compressed)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
        a.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=10)
    save_png(fig, path, dpi=110)


def _jsonable(obj):
    """JSON has no infinity: an infinite SNR is written as the string "inf" (its row also says noise_free)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return "inf" if isinstance(obj, float) and math.isinf(obj) else obj


def synthetic_report(out, k: int = 4, d: int = 32, rank: int = 4, tokens: int = 64, sets: int = 8,
                     noise: float = 0.5, depth: int = 5, eta: float = 0.5, tau: float = 0.05, beta: float = 1.0,
                     seed: int = 0) -> dict:
    """Token sets from a noisy mixture of ``k`` subspaces through AoT and CRATE layers with the true subspaces:
    ``synthetic.json`` and ``synthetic.png`` in the folder ``out`` (published whole). Every size is checked, and
    the memory of the token sets and their attention matrices against the machine, before anything is drawn."""
    from ..checks import check_int, check_memory, check_number
    from ..data import token_sets
    from ..io import atomic_write_json
    from ..runfolder import check_output_folder, publish_folder

    for name, value, high in (("--k", k, 4096), ("--d", d, 1 << 16), ("--rank", rank, 1 << 16),
                              ("--tokens", tokens, 1 << 24), ("--sets", sets, 1 << 24), ("--depth", depth, 4096)):
        check_int(value, name, low=0 if name == "--depth" else 1, high=high)
    if rank > d:
        raise ConfigError(f"--rank {rank} exceeds --d {d}")
    for name, value in (("--noise", noise), ("--eta", eta), ("--tau", tau), ("--beta", beta)):
        check_number(value, name, low=0.0 if name == "--noise" else -1e6, high=1e6)
    check_int(seed, "--seed", low=0, high=(1 << 63) - 1)
    per_set = tokens * d + k * tokens * tokens  # the tokens and one head's attention matrix at a time, per set
    check_memory(8 * 6 * sets * per_set, f"{sets} token sets of {tokens} tokens in {d} dimensions")
    out = check_output_folder(out)
    z, labels, bases, _ = token_sets(sets, tokens, k, d, rank, noise, seed)
    result = denoising_curves(z, labels, bases, depth, eta, tau, beta)
    result["data"] = {"k": k, "d": d, "rank": rank, "tokens": tokens, "sets": sets, "noise": noise, "seed": seed}
    with publish_folder(out) as tmp:
        atomic_write_json(tmp / "synthetic.json", _jsonable(result))
        plot_denoising(result, tmp / "synthetic.png", f"K={k}, d={d}, rank {rank}, σ={noise}, η={eta}, τ={tau}")
    return result
