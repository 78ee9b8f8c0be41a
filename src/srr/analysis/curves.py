"""Training curves of any run (``curves.png``): the losses, and the evaluation metrics, against the epoch or step.

Left panel: the training loss (the mean over each round) and the held-out loss (``test_loss`` or ``val_loss``); a
logarithmic axis only when every value is positive (an MCR² loss is negative). Right panel: every other held-out
figure the objective reports (accuracy, nearest-subspace and k-NN accuracy, bits per byte), each on its own axis
scale within [0, 1] for fractions. Points are rounds (an epoch, or ``eval_every`` steps).
"""
from __future__ import annotations

import math
from pathlib import Path

__all__ = ["plot_curves", "LOSS_KEYS"]

LOSS_KEYS = ("train_loss", "test_loss", "val_loss")
_SKIP = {"epoch", "step", "lr", "seconds", "images", "tokens", "images_per_second", "tokens_per_second"}


def _numbers(rows: list[dict], key: str) -> list[tuple[float, float]]:
    xs = "epoch" if all("epoch" in r for r in rows) else "step"
    return [(r[xs], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]


def plot_curves(rows: list[dict], path: str | Path, title: str = "") -> None:
    """Write the two-panel PNG of the records ``rows`` (``metrics.jsonl``) to ``path`` atomically."""
    from .plotting import pyplot, save_png

    plt = pyplot()
    xs = "epoch" if all("epoch" in r for r in rows) else "step"
    metrics = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float))} - _SKIP - set(LOSS_KEYS)
                     - {k for k in (rows[0] if rows else {}) if k.startswith("train_")})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    positive = True
    for key in LOSS_KEYS:
        pts = _numbers(rows, key)
        if pts:
            positive &= all(v > 0 for _, v in pts)
            a1.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=key.replace("_", " "))
    if positive and a1.lines:
        a1.set_yscale("log")
    a1.set(xlabel=xs, ylabel="loss", title="loss")
    if a1.lines:
        a1.legend(fontsize=8)
    for key in metrics:
        pts = _numbers(rows, key)
        if pts:
            a2.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=key.replace("_", " "))
    a2.set(xlabel=xs, title="held-out")
    if a2.lines:
        a2.legend(fontsize=8)
    else:
        a2.text(0.5, 0.5, "no held-out figures", ha="center", va="center", transform=a2.transAxes, color="grey")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    save_png(fig, path, dpi=110)
