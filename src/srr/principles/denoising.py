"""Denoising a mixture of low-rank Gaussians: the exact denoiser next to the network operators (docs/principles.md).

For every noise level σ of a geometric grid, ``samples`` pairs (x, y = x + σg) of the mixture
(:mod:`srr.principles.mixture`) are denoised by

* ``posterior``: the posterior mean E[x | y] (the Bayes-optimal denoiser, a softmax over subspaces);
* ``oracle``: U_k U_kᵀ y/(1 + σ²) with the true component k (a lower bound; expected error p σ²/(1 + σ²));
* ``mssa``: one compression step of CRATE on sets of ``tokens`` noisy samples, with the true subspaces as U and
  the output through U (CRATE-C): ``Y + η A(Y)``, ``A(Y) = Σ_k softmax(β W_k W_kᵀ) W_k U_kᵀ``, ``W_k = Y U_k``,
  with MSSA's scale β = p^-½ (:func:`srr.analysis.denoising.aot_step`);
* ``attention_only``: one layer of the attention-only transformer, the same step with β = 1 (the AoT formula,
  without the LayerNorm, which would rescale the tokens);
* ``noisy``: y itself (error d σ²).

The network steps know nothing of σ. Each is scored as the best combination ``a·Y + b·A(Y)`` of its skip connection
and its attention term — the best step size η = b/a and overall gain a that any network could learn — fitted by
least squares knowing x (a favour to them); ``mse_step`` is the literal step (a, b) = (1, η). Errors are
``E‖x̂ − x‖²`` per sample (summed over the d coordinates).

Coding rates (rows L2-normalised, ε = ``eps``): R of the clean set, of the noisy set and of the posterior means, and
the class-wise R^c with the true components, so that ΔR = R − R^c shows the structure denoising restores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..analysis.denoising import aot_step, true_mssa
from ..checks import check_finite, check_finite_tree, check_int, check_memory
from ..errors import ConfigError
from ..measures import coding_rate, compressed_rate
from ..settings import Settings, option
from .mixture import (LowRankMixture, low_rank_mixture, nearest_subspace, noise_levels, oracle_mean, posterior_mean,
                      reverse_sample)

__all__ = ["DenoiseSettings", "network_denoisers", "best_combination", "mse_curves", "sampler_summary",
           "denoise_report", "METHODS"]

METHODS = ("posterior", "oracle", "mssa", "attention_only", "noisy")


@dataclass
class DenoiseSettings(Settings):
    """The settings of :func:`denoise_report` (every field is a flag of ``srr denoise``)."""

    k: int = option(4, "number of subspaces K", low=1, high=256)
    d: int = option(16, "ambient dimension d", low=1, high=4096)
    rank: int = option(2, "dimension p of every subspace", low=1, high=4096)
    samples: int = option(4096, "noisy samples per noise level", low=1, high=1 << 22)
    tokens: int = option(32, "samples per token set of the MSSA and attention-only steps", low=1, high=4096)
    sigma_min: float = option(0.05, "smallest noise level σ of the MSE curves", low=1e-4, high=1e3)
    sigma_max: float = option(3.0, "largest noise level σ of the MSE curves", low=1e-4, high=1e3)
    levels: int = option(12, "noise levels, geometrically spaced", low=2, high=1000)
    eta: float = option(1.0, "step η of the literal MSSA and AoT steps (mse_step)", low=0.0, low_open=True, high=1e3)
    eps: float = option(0.5, "ε of the coding rates (not ε²)", low=0.0, low_open=True, high=1e6)
    sampler_samples: int = option(2000, "samples drawn by the reverse-time sampler", low=1, high=1 << 22)
    sampler_steps: int = option(200, "steps of the reverse-time sampler", low=1, high=100_000)
    sampler_sigma_max: float = option(10.0, "noise level the sampler starts from", low=1e-4, high=1e4)
    sampler_sigma_min: float = option(0.01, "noise level the sampler ends at", low=1e-4, high=1e3)
    seed: int = option(0, "seed of the subspaces, the samples and the sampler", low=0, high=2**63 - 1)

    def check(self) -> None:
        if self.rank > self.d:
            raise ConfigError(f"rank {self.rank} exceeds d = {self.d}")
        if not self.sigma_min < self.sigma_max:
            raise ConfigError(f"sigma_min {self.sigma_min:g} must be below sigma_max {self.sigma_max:g}")
        if not self.sampler_sigma_min < self.sampler_sigma_max:
            raise ConfigError(f"sampler_sigma_min {self.sampler_sigma_min:g} must be below sampler_sigma_max "
                              f"{self.sampler_sigma_max:g}")
        if self.tokens > self.samples:
            raise ConfigError(f"tokens {self.tokens} exceeds samples {self.samples}: no token set can be formed")


@torch.no_grad()
def network_denoisers(y: Tensor, mix: LowRankMixture, tokens: int) -> dict[str, Tensor]:
    """The attention terms A(Y) (n, d) of ``"mssa"`` (β = p^-½) and ``"attention_only"`` (β = 1) for the rows of y
    grouped in sets of ``tokens`` consecutive rows (n must be a multiple of ``tokens``), with the true subspaces."""
    tokens = check_int(tokens, "tokens", low=1, high=1 << 20)
    check_finite(y, "y")
    if y.dim() != 2 or y.shape[1] != mix.d:
        raise ConfigError(f"y must be (n, {mix.d}), got {tuple(y.shape)}")
    n, d = y.shape
    if n % tokens:
        raise ConfigError(f"{n} samples do not split into sets of {tokens} tokens")
    check_memory(4 * (4 * n * d + 2 * n * tokens * mix.k), f"{n // tokens} token sets of {tokens} tokens")
    op = true_mssa([u.float() for u in mix.bases])
    z = y.float().reshape(n // tokens, tokens, d)
    return {name: (aot_step(z, op, 1.0, beta) - z).reshape(n, d).double()
            for name, beta in (("mssa", mix.p ** -0.5), ("attention_only", 1.0))}


def best_combination(y: Tensor, a: Tensor, x: Tensor) -> tuple[float, float]:
    """(a, b) minimising Σ‖a·y + b·A − x‖² (the 2 × 2 normal equations; least norm when y and A are collinear)."""
    feats = torch.stack([y.flatten(), a.flatten()], dim=1).double()
    coef = torch.linalg.lstsq(feats, x.flatten().double().unsqueeze(1), driver="gelsd").solution.flatten()
    return float(coef[0]), float(coef[1])


def _rates(z: Tensor, labels: Tensor, eps: float) -> dict:
    zn = torch.nn.functional.normalize(z.double(), dim=-1)
    r = float(coding_rate(zn, eps))
    rc = float(compressed_rate(zn, labels, eps))
    return {"R": r, "Rc": rc, "delta_R": r - rc}


def mse_curves(mix: LowRankMixture, sigmas, samples: int, tokens: int, eta: float = 1.0, eps: float = 0.5,
               generator: torch.Generator | None = None) -> list[dict]:
    """One row per σ: the error ``mse`` of every method of :data:`METHODS` (for the network steps also the fitted
    ``skip`` a and ``attention`` b, and ``mse_step`` of the literal step with η), the oracle's
    expected error p σ²/(1 + σ²), the ratios to the posterior mean, and the coding rates (``rates``)."""
    tokens = check_int(tokens, "tokens", low=1, high=1 << 20)
    samples = check_int(samples, "samples", low=1, high=1 << 26)
    samples = samples - samples % tokens
    if samples < tokens:
        raise ConfigError(f"need at least one set of {tokens} tokens")
    rows = []
    for sigma in sigmas:
        sigma = float(sigma)
        x, y, labels = mix.sample(samples, sigma, generator)
        outs = {"posterior": posterior_mean(y, mix, sigma), "oracle": oracle_mean(y, labels, mix, sigma), "noisy": y}
        row = {"sigma": sigma, "oracle_expected": mix.p * sigma**2 / (1 + sigma**2), "methods": {}}
        for name, xhat in outs.items():
            row["methods"][name] = {"mse": float((xhat - x).square().sum(-1).mean())}
        for name, att in network_denoisers(y, mix, tokens).items():
            a, b = best_combination(y, att, x)
            row["methods"][name] = {"mse": float((a * y + b * att - x).square().sum(-1).mean()), "skip": a,
                                    "attention": b, "mse_step": float((y + eta * att - x).square().sum(-1).mean())}
        post = row["methods"]["posterior"]["mse"]
        row["ratios"] = {f"{name}_over_posterior": row["methods"][name]["mse"] / post if post > 0 else None
                         for name in METHODS if name != "posterior"}
        row["rates"] = {"clean": _rates(x, labels, eps), "noisy": _rates(y, labels, eps),
                        "posterior": _rates(outs["posterior"], labels, eps)}
        rows.append(row)
    return rows


def sampler_summary(mix: LowRankMixture, result: dict) -> dict:
    """Shares per subspace, distances to the nearest subspace (of the final samples and of the last iterate), the
    mean squared norm of the samples (p expected) and the trajectory."""
    dist, idx = nearest_subspace(result["samples"], mix)
    raw, _ = nearest_subspace(result["last"], mix)
    shares = (torch.bincount(idx, minlength=mix.k).double() / len(idx)).tolist()
    sigma_min = float(result["sigmas"][-1])
    return {"n": len(idx), "shares": shares, "expected_shares": mix.priors.tolist(),
            "share_max_deviation": max(abs(a - b) for a, b in zip(shares, mix.priors.tolist())),
            "distance_mean": float(dist.mean()), "distance_max": float(dist.max()),
            "last_distance_mean": float(raw.mean()), "last_distance_max": float(raw.max()),
            "last_distance_expected": sigma_min * math.sqrt(mix.d - mix.p),
            "norm2_mean": float(result["samples"].square().sum(-1).mean()), "norm2_expected": float(mix.p),
            "trajectory": result["trajectory"]}


def _plot_mse(rows: list[dict], path, title: str) -> None:
    from ..analysis.plotting import pyplot, save_png

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    s = [r["sigma"] for r in rows]
    labels = {"posterior": "posterior mean E[x|y]", "oracle": "oracle (knows k)",
              "mssa": r"MSSA step, $\beta=p^{-1/2}$ (best $a, b$)",
              "attention_only": r"AoT step, $\beta=1$ (best $a, b$)",
              "noisy": "noisy input y"}
    for name in METHODS:
        a1.plot(s, [r["methods"][name]["mse"] for r in rows], marker="o", ms=3, label=labels[name])
    a1.plot(s, [r["oracle_expected"] for r in rows], "k--", lw=1, label=r"$p\sigma^2/(1+\sigma^2)$")
    a1.set(xscale="log", yscale="log", xlabel=r"noise level $\sigma$", ylabel=r"MSE  $E\|\hat x - x\|^2$",
           title="denoising error")
    for name in ("oracle", "mssa", "attention_only"):
        a2.plot(s, [r["ratios"][f"{name}_over_posterior"] for r in rows], marker="o", ms=3, label=labels[name])
    a2.axhline(1.0, color="k", lw=0.8)
    a2.set(xscale="log", yscale="log", xlabel=r"noise level $\sigma$", ylabel="MSE / MSE of the posterior mean",
           title="relative to the posterior mean")
    for a in (a1, a2):
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path)


def _plot_rates(rows: list[dict], path, title: str) -> None:
    from ..analysis.plotting import pyplot, save_png

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    s = [r["sigma"] for r in rows]
    for which, style in (("clean", "k--"), ("noisy", "o-"), ("posterior", "s-")):
        a1.plot(s, [r["rates"][which]["R"] for r in rows], style, ms=3, label=f"{which}")
        a2.plot(s, [r["rates"][which]["delta_R"] for r in rows], style, ms=3, label=f"{which}")
    a1.set(xscale="log", xlabel=r"noise level $\sigma$", ylabel=r"$R(Z, \epsilon)$ (nats)",
           title="coding rate of the set (rows normalised)")
    a2.set(xscale="log", xlabel=r"noise level $\sigma$", ylabel=r"$\Delta R = R - R^c$ (true components)",
           title="rate reduction")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8, title="set")
    fig.suptitle(title, fontsize=10)
    save_png(fig, path)


def _plot_sampler(mix: LowRankMixture, summary: dict, plane: dict, path, title: str) -> None:
    from ..analysis.plotting import pyplot, save_png

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    k = len(summary["shares"])
    axes[0].bar(range(k), summary["shares"], color="tab:blue", label="samples")
    axes[0].hlines(summary["expected_shares"], [i - 0.4 for i in range(k)], [i + 0.4 for i in range(k)], colors="k",
                   lw=2, label=r"prior $\pi_k$")
    axes[0].set(xlabel="nearest subspace k", ylabel="fraction of the samples", title="share per subspace")
    axes[0].set_xticks(range(k))
    axes[0].legend(fontsize=8, loc="lower right")
    traj = summary["trajectory"]
    sig = [t["sigma"] for t in traj]
    axes[1].plot(sig, [t["distance_mean"] for t in traj], label="mean")
    axes[1].plot(sig, [t["distance_max"] for t in traj], label="max")
    axes[1].plot(sig, [s * math.sqrt(mix.d - mix.p) for s in sig], "k--", lw=1, label=r"$\sigma\sqrt{d-p}$")
    axes[1].set(xscale="log", yscale="log", xlabel=r"noise level $\sigma$ (time runs right to left)",
                ylabel="distance of the iterate to the nearest subspace", title="reverse-time trajectory")
    axes[1].invert_xaxis()
    axes[1].legend(fontsize=8)
    pts, lab, lines = plane["samples"], plane["labels"], plane["bases"]
    axes[2].scatter(plane["start"][:, 0], plane["start"][:, 1], s=2, c="lightgrey", label="start (noise / 5)")
    axes[2].scatter(pts[:, 0], pts[:, 1], s=4, c=lab, cmap="tab10", vmin=0, vmax=9, label="samples")
    for u in lines:
        axes[2].plot([-4 * u[0], 4 * u[0]], [-4 * u[1], 4 * u[1]], "k-", lw=0.6)
    axes[2].set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
                title=f"{len(lines)} lines in the plane: noise → samples")
    axes[2].legend(fontsize=8, loc="upper right")
    for a in axes:
        a.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path)


def _plane_example(steps: int, seed: int) -> dict:
    """The sampler on 3 lines through the origin of R² (600 samples), for the picture."""
    mix = low_rank_mixture(3, 2, 1, seed)
    g = torch.Generator().manual_seed(seed + 2)
    res = reverse_sample(mix, 600, 5.0, 0.01, steps, g)
    _, idx = nearest_subspace(res["samples"], mix)
    return {"samples": res["samples"].numpy(), "labels": idx.numpy(), "bases": mix.bases[:, :, 0].numpy(),
            "start": (res["start"] / 5).numpy()}


def denoise_report(out, settings: DenoiseSettings | None = None) -> dict:
    """Write ``denoise.json``, ``mse.png``, ``rates.png`` and ``sampler.png`` into the folder ``out`` (published
    whole): the MSE curves, the coding rates and the reverse-time sampler of the module docstring. Returns the
    report."""
    from ..io import atomic_write_json
    from ..runfolder import check_output_folder, publish_folder

    s = settings or DenoiseSettings()
    if not isinstance(s, DenoiseSettings):
        raise ConfigError(f"settings must be a DenoiseSettings, got {type(s).__name__}")
    n = s.samples - s.samples % s.tokens
    check_memory(8 * 12 * n * s.d + 4 * 2 * n * s.tokens * s.k + 8 * 8 * s.sampler_samples * s.d * s.k,
                 f"{n} samples in {s.d} dimensions and {s.sampler_samples} sampler draws")
    out = check_output_folder(out)
    mix = low_rank_mixture(s.k, s.d, s.rank, s.seed)
    g = torch.Generator().manual_seed(s.seed + 1)
    rows = mse_curves(mix, noise_levels(s.sigma_max, s.sigma_min, s.levels - 1).flip(0).tolist(), n, s.tokens,
                      s.eta, s.eps, g)
    sampled = reverse_sample(mix, s.sampler_samples, s.sampler_sigma_max, s.sampler_sigma_min, s.sampler_steps, g,
                             record_every=max(1, s.sampler_steps // 100))
    sampler = sampler_summary(mix, sampled)
    report = {"settings": s.to_dict(), "mixture": {"k": mix.k, "d": mix.d, "p": mix.p, "priors": mix.priors.tolist(),
                                                   "subspaces": "independent uniformly random"},
              "mse": rows, "sampler": sampler}
    check_finite_tree(report, "the report")
    title = f"K={s.k} subspaces of dimension p={s.rank} in d={s.d}, {n} samples per σ"
    with publish_folder(out) as tmp:
        atomic_write_json(tmp / "denoise.json", report)
        _plot_mse(rows, tmp / "mse.png", title)
        _plot_rates(rows, tmp / "rates.png", title + f", ε={s.eps:g}")
        _plot_sampler(mix, sampler, _plane_example(s.sampler_steps, s.seed), tmp / "sampler.png",
                      f"reverse-time sampler with the exact score, σ {s.sampler_sigma_max:g} → "
                      f"{s.sampler_sigma_min:g} in {s.sampler_steps} steps")
    return report
