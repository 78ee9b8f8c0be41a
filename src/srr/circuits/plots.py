"""The figures of ``srr circuits``: W_QK / W_OV heatmaps per head, the composition matrix, pattern-score bars, the
logit-lens curve. Every figure is written atomically (:func:`srr.analysis.plotting.save_png`)."""
from __future__ import annotations

import torch

from ..analysis.plotting import pyplot, save_png
from .weights import HeadWeights

__all__ = ["plot_head_matrices", "plot_composition", "plot_pattern_scores", "plot_logit_lens"]


def plot_head_matrices(heads: list[list[HeadWeights]], path, which: str, title: str) -> None:
    """A grid (layers × heads) of the d × d matrices ``which`` ("qk" or "ov"), each on a symmetric colour scale."""
    plt = pyplot()
    rows, cols = len(heads), max(len(layer) for layer in heads)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols + 0.5, 1.8 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for layer in heads:
        for h in layer:
            m = h.qk if which == "qk" else h.ov
            ax = axes[h.layer, h.head]
            if m is None:
                ax.text(0.5, 0.5, "no W_QK", ha="center", va="center", fontsize=7)
                continue
            limit = float(m.abs().max()) or 1.0
            ax.imshow(m.float().numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_title(f"L{h.layer} H{h.head}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_png(fig, path)


def plot_composition(rows: list[dict], baseline: dict, path, title: str) -> None:
    """Q-, K- and V-composition of every (earlier head → later head) pair as three heatmaps; the random baseline in
    the subtitles."""
    plt = pyplot()
    sources = sorted({tuple(r["from"]) for r in rows})
    targets = sorted({tuple(r["to"]) for r in rows})
    fig, axes = plt.subplots(1, 3, figsize=(3 * max(2.5, 0.25 * len(targets) + 1.5), max(2.5, 0.25 * len(sources) + 1)))
    for ax, kind in zip(axes, ("q", "k", "v")):
        grid = torch.full((len(sources), len(targets)), float("nan"))
        for r in rows:
            if r[kind] is not None:
                grid[sources.index(tuple(r["from"])), targets.index(tuple(r["to"]))] = r[kind]
        image = ax.imshow(grid.numpy(), cmap="viridis", vmin=0, interpolation="nearest", aspect="auto")
        ax.set_title(f"{kind.upper()}-composition (random {baseline[kind]:.3f})", fontsize=8)
        ax.set_xlabel("later head (layer, head)", fontsize=7)
        ax.set_ylabel("earlier head", fontsize=7)
        if len(targets) <= 24:
            ax.set_xticks(range(len(targets)), [f"{a},{b}" for a, b in targets], fontsize=5, rotation=90)
        if len(sources) <= 24:
            ax.set_yticks(range(len(sources)), [f"{a},{b}" for a, b in sources], fontsize=5)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=9)
    save_png(fig, path)


def plot_pattern_scores(rows: list[dict], chance: dict, path, title: str) -> None:
    """Bars of the previous-token, induction and duplicate-token scores per head, with the chance levels."""
    plt = pyplot()
    keys = ("previous_token", "induction", "duplicate_token")
    fig, axes = plt.subplots(3, 1, figsize=(max(4.0, 0.3 * len(rows) + 1.5), 6), sharex=True)
    labels = [f"{r['layer']},{r['head']}" for r in rows]
    for ax, key in zip(axes, keys):
        ax.bar(range(len(rows)), [r[key] for r in rows], color="tab:blue")
        ax.axhline(chance[key], color="tab:red", linestyle="--", linewidth=1, label="chance")
        ax.set_ylabel(key.replace("_", " "), fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xticks(range(len(rows)), labels, fontsize=6, rotation=90)
    axes[-1].set_xlabel("(layer, head)", fontsize=8)
    fig.suptitle(title, fontsize=9)
    save_png(fig, path)


def plot_logit_lens(rows: list[dict], path, title: str) -> None:
    """Accuracy and KL to the final prediction after every layer."""
    plt = pyplot()
    layers = [r["layer"] + 1 for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(layers, [r["accuracy"] for r in rows], marker="o", color="tab:blue", label="accuracy")
    ax.set_xlabel("after layer")
    ax.set_ylabel("accuracy", color="tab:blue")
    ax.set_ylim(0, 1)
    twin = ax.twinx()
    twin.plot(layers, [r["kl_to_final"] for r in rows], marker="s", color="tab:orange", label="KL to final")
    twin.set_ylabel("KL(final || layer), nats", color="tab:orange")
    ax.set_title(title, fontsize=9)
    save_png(fig, path)
