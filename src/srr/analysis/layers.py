"""Layer-by-layer compression and sparsity of a white-box model (REFERENCE §1, the authors' measurement).

For each layer ℓ: the compression ``R^c(Z^ℓ | U^ℓ)`` of the MSSA input ``LN(Z^ℓ)`` against that layer's subspaces,
with every token L2-normalised within each head and ε² = 0.01 (``eps=0.1``), and the sparsity (fraction of non-zero
entries) of the layer output (the ISTA output for CRATE). Mean and standard deviation are over images.
A model qualifies if it has ``trace(x)`` (per-layer dicts with ``mssa_input`` and ``output``) and ``subspaces()``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..measures import sparsity, subspace_compression

__all__ = ["layer_statistics", "compare_layers", "plot_layers"]

EPS = 0.1  # ε, i.e. the authors' ε² = 0.01


@torch.no_grad()
def layer_statistics(model: nn.Module, x: Tensor, eps: float = EPS, batch_size: int = 256) -> list[dict]:
    """Per layer: ``{"layer", "compression_mean", "compression_std", "sparsity_mean", "sparsity_std"}``."""
    if not (hasattr(model, "trace") and hasattr(model, "subspaces")):
        raise ConfigError(f"{type(model).__name__} exposes no layer trace (needs trace() and subspaces())")
    model.eval()
    device = next(model.parameters()).device
    subspaces = [u.detach() for u in model.subspaces()]
    comp: list[list[Tensor]] = [[] for _ in subspaces]
    spars: list[list[Tensor]] = [[] for _ in subspaces]
    for i in range(0, len(x), batch_size):
        records = model.trace(x[i:i + batch_size].to(device))
        for ell, (rec, u) in enumerate(zip(records, subspaces)):
            comp[ell].append(subspace_compression(rec["mssa_input"], u, eps, normalize=True).cpu())
            spars[ell].append(sparsity(rec["output"]).cpu())
    rows = []
    for ell in range(len(subspaces)):
        c, s = torch.cat(comp[ell]).double(), torch.cat(spars[ell]).double()
        rows.append({"layer": ell + 1, "compression_mean": float(c.mean()), "compression_std": float(c.std()),
                     "sparsity_mean": float(s.mean()), "sparsity_std": float(s.std())})
    return rows


def compare_layers(models: dict[str, nn.Module], x: Tensor, eps: float = EPS) -> dict:
    """``layer_statistics`` of several models on the same images, keyed by label."""
    return {"eps": eps, "images": len(x), "models": {k: layer_statistics(m, x, eps) for k, m in models.items()}}


def plot_layers(report: dict, path) -> None:
    """Two panels against the layer index: compression R^c (mean ± std) and sparsity of the layer outputs."""
    from .plotting import pyplot, save_png

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for label, rows in report["models"].items():
        layers = [r["layer"] for r in rows]
        a1.errorbar(layers, [r["compression_mean"] for r in rows], yerr=[r["compression_std"] for r in rows],
                    marker="o", capsize=3, label=label)
        a2.errorbar(layers, [r["sparsity_mean"] for r in rows], yerr=[r["sparsity_std"] for r in rows],
                    marker="o", capsize=3, label=label)
    a1.set(xlabel="layer", ylabel=r"$R^c(Z^\ell \mid U^\ell)$", title=f"compression (ε = {report['eps']})")
    a2.set(xlabel="layer", ylabel="fraction non-zero", title="sparsity of layer output")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend()
        a.xaxis.get_major_locator().set_params(integer=True)
    save_png(fig, path, dpi=120)
