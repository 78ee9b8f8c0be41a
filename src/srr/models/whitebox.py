"""Inspection methods shared by the white-box vision models whose attention has a tied projection ``qkv`` = U_[K].

``subspaces()`` returns, per layer, the bases U (K, d, p) that the instruments of :mod:`srr.analysis` measure
compression against; ``attention_maps(x)`` returns, per layer, the softmax attention (B, K, N+1, N+1) of MSSA-type
operators. A model lists its attention operators in :meth:`attention_modules` (default: the first sub-module of
every ``transformer.layers[i]``, a ``PreNorm``) and its ``trace(x)`` records hold the attention input under
``"mssa_input"``.
"""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["SubspaceMixin", "AttentionMapMixin", "TransformerMixin", "crate_widths"]


def crate_widths(size: str) -> dict:
    """``dim``, ``depth`` and ``heads`` of the registered ``crate_{size}`` (the family's named sizes reuse them)."""
    from .registry import get_entry

    defaults = get_entry(f"crate_{size}").defaults
    return {k: defaults[k] for k in ("dim", "depth", "heads")}


class TransformerMixin:
    """``encode`` and ``trace`` delegated to ``self.transformer`` (which has ``forward`` and ``trace``)."""

    def encode(self, z: Tensor) -> Tensor:
        return self.transformer(z)

    def trace(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per-layer intermediate tokens (see the ``trace`` of the model's transformer)."""
        return self.transformer.trace(self.tokens(x))


class SubspaceMixin:
    """``subspaces()`` from the tied projections of the attention operators."""

    def attention_modules(self) -> list[nn.Module]:
        return [layer[0].fn for layer in self.transformer.layers]

    def subspaces(self) -> list[Tensor]:
        """Per layer, the subspace bases U (K, d, p) of the tied attention projection ``qkv.weight``."""
        from ..measures import heads_from_qkv

        return [heads_from_qkv(m.qkv.weight, m.heads) for m in self.attention_modules()]


class AttentionMapMixin:
    """``attention_maps(x)`` for models whose attention operators have ``attention(tokens)`` (MSSA)."""

    def attention_maps(self, x: Tensor) -> list[Tensor]:
        """Per layer, the softmax attention (B, K, N+1, N+1) of every head."""
        return [m.attention(rec["mssa_input"]) for m, rec in zip(self.attention_modules(), self.trace(x))]
