"""Layer by layer: the compression of each block's attention input and the sparsity of its output, for any family.

For each block ℓ of a model with the layer protocol (:meth:`~srr.models.TransformerModel.trace`):

* **compression** ``R^c(Z^ℓ | U^ℓ)`` of the attention input ``LN(Z^ℓ)`` against per-head subspaces U^ℓ (K × d × p),
  every token L2-normalised within each head, ε = 0.1 (the authors' ε² = 0.01) — the authors' measurement. Which U:

  - ``"model"`` (default): the model's own. For a tied attention (MSSA, TSSA: CRATE, CRATE-α, AoT, ToST and their
    causal forms) the projection ``qkv`` = U_[K] itself, as the authors measure; for attention with separate
    projections (ViT, GPT) an orthonormal basis of each head's *value* projection (the subspace whose coordinates the
    head averages over the tokens, the analogue of U_k in MSSA's ``softmax(·) w_k``);
  - ``"pca"``: subspaces of the tokens themselves, the same rule for every family: the top K·p right singular vectors
    of the (uncentred) attention inputs of all measured samples, cut into K consecutive blocks of p (the first block
    the top p directions) — so that CRATE and ViT can be compared in one plot;

* **sparsity**: the fraction of non-zero entries of the block output (the ISTA output for CRATE).

Mean and standard deviation are over the samples (images, or text windows).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..measures import sparsity, subspace_compression

__all__ = ["layer_statistics", "compare_layers", "plot_layers", "layer_bases", "analyze", "BASES", "EPS",
           "describe_basis"]

EPS = 0.1  # ε, i.e. the authors' ε² = 0.01
BASES = ("model", "pca")


def describe_basis(model: nn.Module, basis: str) -> str:
    if basis == "pca":
        return "PCA of the tokens: top K·p right singular vectors of the attention inputs, K blocks of p"
    if getattr(model, "subspaces", lambda: None)() is not None:
        return "the tied attention projection U_[K] (qkv.weight)"
    return "an orthonormal basis of each head's value projection W_V^h"


def _check(model: nn.Module) -> None:
    if not (hasattr(model, "trace") and hasattr(model, "block_list")):
        raise ConfigError(f"{type(model).__name__} has no layers of tokens to trace (it is not a transformer)")


def layer_bases(model: nn.Module, basis: str = "model", inputs: list[Tensor] | None = None) -> list[Tensor]:
    """Per block the bases (K, d, p) of ``basis`` (see the module docstring); ``inputs`` are the blocks' attention
    inputs (…, N, d) for ``"pca"``."""
    if basis not in BASES:
        raise ConfigError(f"basis must be one of {', '.join(BASES)}, got {basis!r}")
    if basis == "model":
        tied = model.subspaces()
        return [u.detach() for u in tied] if tied is not None else [u.detach() for u in model.head_bases("value")]
    if inputs is None:
        raise ConfigError("PCA subspaces need the attention inputs")
    k, p = model.heads, model.dim_head
    out = []
    for z in inputs:
        flat = z.reshape(-1, z.shape[-1]).double()
        _, _, vh = torch.linalg.svd(flat, full_matrices=False)
        r = min(k * p, vh.shape[0])
        v = vh[:r].mT  # (d, r)
        if r < k * p:
            v = torch.cat([v, torch.zeros(v.shape[0], k * p - r, dtype=v.dtype)], dim=1)
        out.append(v.reshape(v.shape[0], k, p).permute(1, 0, 2).to(z.dtype))
    return out


@torch.no_grad()
def layer_statistics(model: nn.Module, x: Tensor, eps: float = EPS, batch_size: int = 256,
                     basis: str = "model") -> list[dict]:
    """Per block: ``{"layer", "compression_mean", "compression_std", "sparsity_mean", "sparsity_std"}``."""
    _check(model)
    model.eval()
    device = next(model.parameters()).device
    inputs: list[list[Tensor]] = [[] for _ in model.block_list]
    spars: list[list[Tensor]] = [[] for _ in model.block_list]
    for i in range(0, len(x), batch_size):
        for ell, rec in enumerate(model.trace(x[i:i + batch_size].to(device))):
            inputs[ell].append(rec["attn_input"].cpu())
            spars[ell].append(sparsity(rec["output"]).cpu())
    inputs_cat = [torch.cat(z) for z in inputs]
    bases = layer_bases(model, basis, inputs_cat if basis == "pca" else None)
    rows = []
    for ell, (z, u) in enumerate(zip(inputs_cat, bases)):
        c = subspace_compression(z, u.cpu().to(z.dtype), eps, normalize=True).double()
        s = torch.cat(spars[ell]).double()
        rows.append({"layer": ell + 1, "compression_mean": float(c.mean()), "compression_std": float(c.std()),
                     "sparsity_mean": float(s.mean()), "sparsity_std": float(s.std())})
    return rows


def compare_layers(models: dict[str, nn.Module], x: Tensor, eps: float = EPS, bases=BASES) -> dict:
    """``layer_statistics`` of several models on the same inputs, keyed by label, for every basis of ``bases``:
    ``{"eps", "samples", "models": {label: rows}, "pca": {label: rows}, "basis": {label: description}}``."""
    report = {"eps": eps, "samples": len(x), "models": {}, "basis": {}}
    for label, m in models.items():
        report["models"][label] = layer_statistics(m, x, eps, basis="model")
        report["basis"][label] = describe_basis(m, "model")
    if "pca" in bases:
        report["pca"] = {label: layer_statistics(m, x, eps, basis="pca") for label, m in models.items()}
    return report


def plot_layers(report: dict, path) -> None:
    """Panels against the layer index: compression against the models' own subspaces (mean ± std), against PCA
    subspaces of the tokens (when measured), and the sparsity of the block outputs."""
    from .plotting import pyplot, save_png

    plt = pyplot()
    panels = [("models", r"$R^c(Z^\ell \mid U^\ell)$, model's subspaces")]
    if report.get("pca"):
        panels.append(("pca", r"$R^c(Z^\ell \mid U^\ell)$, PCA subspaces"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5 * (len(panels) + 1), 4))
    for ax, (key, title) in zip(axes, panels):
        for label, rows in report[key].items():
            ax.errorbar([r["layer"] for r in rows], [r["compression_mean"] for r in rows],
                        yerr=[r["compression_std"] for r in rows], marker="o", capsize=3, label=label)
        ax.set(xlabel="layer", ylabel="compression (lower: more compressed)", title=f"{title} (ε = {report['eps']})")
    ax = axes[-1]
    for label, rows in report["models"].items():
        ax.errorbar([r["layer"] for r in rows], [r["sparsity_mean"] for r in rows],
                    yerr=[r["sparsity_std"] for r in rows], marker="o", capsize=3, label=label)
    ax.set(xlabel="layer", ylabel="fraction of non-zero entries", title="non-zero fraction of the block output")
    for a in axes:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
        a.xaxis.get_major_locator().set_params(integer=True)
    save_png(fig, path, dpi=120)


def analyze(sources: list, data, out, samples: int = 512, eps: float = EPS, seed: int = 0) -> dict:
    """Write ``layers.json`` and ``layers.png`` into the folder ``out`` (published whole): :func:`compare_layers` of
    every source on the first ``samples`` held-out inputs of ``data`` (test images, or validation windows of text),
    each next to a randomly initialised copy (``seed``). Returns the report."""
    from ..checks import check_eps, check_int, check_seed
    from ..io import atomic_write_json
    from ..models import create_model
    from ..runfolder import publish_folder
    from .runs import sample_inputs

    check_int(samples, "--samples", low=1)
    check_seed(seed)
    eps = check_eps(eps, "--eps")
    if not sources:
        raise ConfigError("analyze needs at least one model")
    tasks = {s.task for s in sources}
    if len(tasks) > 1:
        raise ConfigError(f"cannot compare models of different tasks ({', '.join(sorted(tasks))}) on one data set")
    x = sample_inputs(sources[0], data, samples)
    models, names = {}, []
    for src in sources:
        _check(src.model)
        torch.manual_seed(seed)
        random = create_model(src.name, **src.args)
        prefix = f"{src.name} " if len(sources) > 1 else ""
        models[f"{prefix}{src.label}"] = src.model
        models[f"{prefix}random init"] = random
        names.append(src.name)
    report = compare_layers(models, x, eps)
    report.update({"model": names[0] if len(names) == 1 else names, "data": data.spec,
                   "source": [str(s.path or s.name) for s in sources] if len(sources) > 1 else str(
                       sources[0].path or sources[0].name), "images": len(x),
                   "protocol": "attention input LN(Z^l) of every block, tokens L2-normalised per head; "
                               "non-zero fraction of the block output; mean over samples"})
    with publish_folder(out) as tmp:
        atomic_write_json(tmp / "layers.json", report)
        plot_layers(report, tmp / "layers.png")
    return report
