"""Model configurations: one dataclass per family's block, one per front end, composed per model class.

A model's configuration is the dataclass its registry function returns and its ``config.json`` stores (``args``):

* :class:`BlockConfig` — what every transformer family shares (``dim``, ``depth``, ``heads``, ``dim_head``,
  ``dropout``); a family subclasses it with its block's own fields (CRATE's ISTA step and threshold, ToST's layer
  scale, …);
* a front end — :class:`ImageConfig` (patches of an image, a classification head) or :class:`TextConfig` (token and
  position embeddings, a tied next-token head);
* :func:`compose` joins the two into the configuration of one model class (``CRATE.Config``, ``CRATEGPT.Config``).

Every field is checked where it enters (:mod:`srr.settings`): types, bounds, choices, and the relations between
fields (an image divisible into patches, ``heads · dim_head == dim`` where a variant needs it). The bounds keep a
corrupt ``config.json`` or a mistyped ``--set`` from reaching an allocation; :func:`srr.models.create_model` then
checks the parameter memory against what the machine has before building.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..errors import ConfigError
from ..operators.patch_embed import pair
from ..settings import PAIR, Settings, option

__all__ = ["ModelConfig", "BlockConfig", "ImageConfig", "TextConfig", "compose", "pair", "MAX_WIDTH", "MAX_DEPTH"]

MAX_WIDTH = 1 << 16  # token width, head width, hidden width
MAX_DEPTH = 4096
MAX_CLASSES = 1 << 24
MAX_CONTEXT = 1 << 20
MAX_IMAGE = 1 << 16


@dataclass
class ModelConfig(Settings):
    """Base of every model configuration. ``model_cls`` (set by the model class that owns the configuration) builds
    it; ``task`` says what the model does: ``"image"`` (classification), ``"lm"`` (next token) or ``"features"``."""

    model_cls: ClassVar[type | None] = None
    task: ClassVar[str] = "image"

    def check(self) -> None:
        """Relations between fields; subclasses extend it and call ``super().check()``."""

    def build(self):
        if self.model_cls is None:
            raise ConfigError(f"{type(self).__name__} belongs to no model class")
        return self.model_cls.from_config(self)


@dataclass
class BlockConfig(ModelConfig):
    """The layers of a transformer family."""

    dim: int = option(384, "token width d", low=1, high=MAX_WIDTH)
    depth: int = option(12, "number of layers", low=1, high=MAX_DEPTH)
    heads: int = option(6, "attention heads K", low=1, high=MAX_WIDTH)
    dim_head: int | None = option(None, "width p of each head (default dim // heads)", low=1, high=MAX_WIDTH,
                                  example=8)
    dropout: float = option(0.0, "dropout probability inside the layers", low=0.0, high=1.0, high_open=True)

    def check(self) -> None:
        super().check()
        if self.dim_head is None and self.heads > self.dim:
            raise ConfigError(f"heads = {self.heads} exceeds dim = {self.dim}: each head would have width 0 "
                              "(lower heads or set dim_head)")

    @property
    def head_width(self) -> int:
        return self.dim // self.heads if self.dim_head is None else self.dim_head

    def parameter_floor(self) -> int:
        """A lower bound of the parameters, from the attention projections alone (every family has at least one
        of d × K·p per layer) and the front end's tables: cheap to compute for any size, so that a configuration
        far beyond the machine is refused before even a meta-device model is built."""
        front = getattr(self, "num_patches", 0) * self.dim + getattr(self, "vocab_size", 0) * self.dim
        return self.depth * self.dim * self.heads * self.head_width + front


@dataclass
class ImageConfig(ModelConfig):
    """Images cut into patches, a CLS token and learned positions in front; a pooled LayerNorm + Linear head."""

    image_size: int | list = option(224, "image size (an int or [h, w])", low=1, high=MAX_IMAGE, kind=PAIR)
    patch_size: int | list = option(16, "patch size (an int or [h, w])", low=1, high=MAX_IMAGE, kind=PAIR)
    channels: int = option(3, "image channels", low=1, high=4096)
    num_classes: int = option(1000, "number of classes of the head", low=1, high=MAX_CLASSES)
    pool: str = option("cls", "read-out of the head: the CLS token or the mean of all tokens", choices=("cls", "mean"))
    emb_dropout: float = option(0.0, "dropout on the embedded tokens", low=0.0, high=1.0, high_open=True)
    patch_norm: bool = option(True, "LayerNorms before and after the patch Linear (the authors' CRATE); false: the "
                                    "Linear alone, i.e. a strided convolution (ViT, CRATE-α's and DINO's code)")
    norm_eps: float = option(1e-5, "ε of every LayerNorm of the model (PyTorch's 1e-5; 1e-6 in JAX and timm code)",
                             low=1e-12, high=1.0)

    task: ClassVar[str] = "image"

    def check(self) -> None:
        super().check()
        (ih, iw), (ph, pw) = pair(self.image_size), pair(self.patch_size)
        if ih % ph or iw % pw:
            raise ConfigError(f"image size {ih}x{iw} is not divisible by the patch size {ph}x{pw}")
        if ph * pw * self.channels < 2 and self.patch_norm:
            raise ConfigError(f"a patch of {ph}x{pw} on {self.channels} channel(s) holds a single value: the patch "
                              "LayerNorm would map every patch to zero; use a larger patch or more channels")

    @property
    def num_patches(self) -> int:
        (ih, iw), (ph, pw) = pair(self.image_size), pair(self.patch_size)
        return (ih // ph) * (iw // pw)


@dataclass
class TextConfig(ModelConfig):
    """Token and position embeddings in front; a final LayerNorm and a head tied to the token embedding."""

    vocab_size: int = option(256, "vocabulary size (256 for the byte tokenizer)", low=1, high=MAX_CLASSES)
    context: int = option(128, "longest token sequence (learned positions)", low=1, high=MAX_CONTEXT)
    emb_dropout: float = option(0.0, "dropout on the embedded tokens", low=0.0, high=1.0, high_open=True)

    task: ClassVar[str] = "lm"


def compose(block: type, front: type, name: str, **defaults) -> type:
    """The configuration dataclass of a model class: ``block``'s fields then ``front``'s, with ``defaults``
    replacing field defaults (e.g. ToST pools by the mean)."""
    cls = dataclasses.make_dataclass(name, [], bases=(front, block))
    if defaults:
        changed = []
        for f in dataclasses.fields(cls):
            if f.name in defaults:
                new = dataclasses.field(default=defaults[f.name], metadata=f.metadata)
                changed.append((f.name, f.type, new))
        cls = dataclasses.make_dataclass(name, changed, bases=(cls,))
    cls.__module__ = block.__module__
    cls.__qualname__ = name
    return cls
