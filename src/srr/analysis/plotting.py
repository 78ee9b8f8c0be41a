"""Matplotlib helpers of the instruments: the headless (Agg) pyplot, and PNG files written atomically."""
from __future__ import annotations

__all__ = ["pyplot", "save_png"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path, dpi: int = 110, tight: bool = True) -> None:
    """Lay out ``fig``, write it as PNG to ``path`` atomically and close it."""
    from ..io import atomic_path

    plt = pyplot()
    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
