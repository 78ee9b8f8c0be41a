"""A plain ReLU multilayer perceptron on flattened images: the reference network of the feature ansatz.

    h_0 = vec(x),  h_i = ReLU(W_i h_{i−1})  (i = 1 … depth),  f(x) = W_{depth+1} h_depth

``activation="gelu"`` replaces the ReLU by the (exact, erf) GELU; it adds no parameter.

``depth`` counts the hidden layers (so there are depth + 1 weight matrices), ``width`` their size; no biases by
default, as in the reference setup (width 1024, depth 3). ``init_scale`` multiplies PyTorch's default initialisation
(U(−1/√fan_in, 1/√fan_in)); the ansatz is known to hold best with a small initialisation. It has no tokens and no
layer trace: :mod:`srr.analysis.ansatz` works on it, the layer-wise rate instruments do not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from ..errors import DataError
from ..settings import PAIR, option
from .config import MAX_CLASSES, MAX_DEPTH, MAX_IMAGE, MAX_WIDTH, ModelConfig, pair
from .hub import PretrainedMixin
from .registry import register_model

__all__ = ["MLPConfig", "ReLUMLP"]


@dataclass
class MLPConfig(ModelConfig):
    """A bias-free ReLU MLP classifier of flattened images."""

    image_size: int | list = option(28, "image size (an int or [h, w])", low=1, high=MAX_IMAGE, kind=PAIR)
    channels: int = option(1, "image channels", low=1, high=4096)
    num_classes: int = option(10, "number of classes", low=1, high=MAX_CLASSES)
    width: int = option(1024, "width of the hidden layers", low=1, high=MAX_WIDTH)
    depth: int = option(3, "number of hidden layers", low=0, high=MAX_DEPTH)
    bias: bool = option(False, "biases in the linear maps")
    init_scale: float = option(1.0, "factor on PyTorch's default initialisation", low=0.0, high=1e6, low_open=True)
    activation: str = option("relu", "nonlinearity of the hidden layers", choices=("relu", "gelu"))

    task: ClassVar[str] = "image"


class ReLUMLP(PretrainedMixin, nn.Module):
    """Bias-free ReLU (or GELU) MLP; ``layers`` holds the depth + 1 ``nn.Linear`` maps (the last is the read-out)."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        h, w = pair(config.image_size)
        self.image_hw, self.channels, self.num_classes, self.depth = (h, w), config.channels, config.num_classes, \
            config.depth
        sizes = [h * w * config.channels] + [config.width] * config.depth + [config.num_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=config.bias) for a, b in zip(sizes[:-1], sizes[1:]))
        if config.init_scale != 1.0:
            for layer in self.layers:
                layer.weight.data.mul_(config.init_scale)
                if layer.bias is not None:
                    layer.bias.data.mul_(config.init_scale)
        self.act = nn.GELU() if config.activation == "gelu" else nn.ReLU()

    @classmethod
    def from_config(cls, config: MLPConfig) -> "ReLUMLP":
        return cls(config)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last hidden layer (B, width)."""
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (self.channels, *self.image_hw):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"ReLUMLP expects images of shape (batch, {self.channels}, {self.image_hw[0]}, "
                            f"{self.image_hw[1]}), got {got}")
        h = x.flatten(1)
        for layer in self.layers[:-1]:
            h = self.act(layer(h))
        return h

    def forward_head(self, h: Tensor) -> Tensor:
        return self.layers[-1](h)

    def features(self, x: Tensor) -> Tensor:
        return self.forward_features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


MLPConfig.model_cls = ReLUMLP


@register_model
def mlp_nano():
    """bias-free ReLU MLP for 8x8 digits (width 256, 3 hidden layers)"""
    return MLPConfig(image_size=8, channels=1, num_classes=10, width=256, depth=3)


@register_model
def mlp_micro():
    """bias-free ReLU MLP, the feature-ansatz reference (28x28, width 1024, depth 3)"""
    return MLPConfig(image_size=28, channels=1, num_classes=10, width=1024, depth=3)
