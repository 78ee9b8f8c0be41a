"""The three models the train-step and inference benchmarks compare, built with the same weights where they can be.

* ``srr_crate``: ``srr.create_model("crate_tiny", image_size=32, patch_size=4, num_classes=10)`` (dim 384, depth 12,
  6 heads; 5,381,098 parameters).
* ``authors_crate``: :class:`reference_crate.AuthorsCRATE` loaded with srr's state dict (same function).
* ``srr_vit``: ``srr.create_model("vit_tiny", ...)`` with the same image settings: dim 192, depth 12, 3 heads, MLP
  ratio 4 (5,363,242 parameters, 0.3 % fewer than the CRATE): the ViT of equal parameter count.
"""
from __future__ import annotations

import torch

import common  # noqa: F401  (puts src/ on the path)
import srr
from reference_crate import authors_twin

CONFIG = {"image_size": 32, "patch_size": 4, "num_classes": 10}
NAMES = ("srr_crate", "authors_crate", "srr_vit")


def build(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """One contender; ``srr_crate`` and ``authors_crate`` built from the same seed hold identical weights."""
    torch.manual_seed(seed)
    cfg = {**CONFIG, **overrides}
    if name == "srr_crate":
        return srr.create_model("crate_tiny", **cfg)
    if name == "authors_crate":
        return authors_twin(srr.create_model("crate_tiny", **cfg))
    if name == "srr_vit":
        return srr.create_model("vit_tiny", **cfg)
    raise SystemExit(f"unknown contender {name!r}; choose from {', '.join(NAMES)}")


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile`` (inductor, default mode) of ``model``."""
    return torch.compile(model)
