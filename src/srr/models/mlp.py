"""A plain ReLU multilayer perceptron on flattened images: the reference network of the feature ansatz (REFERENCE §9).

    h_0 = vec(x),  h_i = ReLU(W_i h_{i−1})  (i = 1 … depth),  f(x) = W_{depth+1} h_depth

``depth`` counts the hidden layers (so there are depth + 1 weight matrices), ``width`` their size; no biases by
default, as in the reference setup (width 1024, depth 3). ``init_scale`` multiplies PyTorch's default initialisation
(U(−1/√fan_in, 1/√fan_in)); the ansatz is known to hold best with a small initialisation. It has no attention and no
layer trace: :mod:`srr.analysis.ansatz` works on it, the layer-wise rate instruments do not.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from ..operators import pair
from .hub import PretrainedMixin
from .registry import register_model

__all__ = ["ReLUMLP"]


class ReLUMLP(PretrainedMixin, nn.Module):
    """Bias-free ReLU MLP classifier; ``layers`` holds the depth + 1 ``nn.Linear`` maps (the last is the read-out)."""

    def __init__(self, image_size=28, channels: int = 1, num_classes: int = 10, width: int = 1024, depth: int = 3,
                 bias: bool = False, init_scale: float = 1.0):
        super().__init__()
        h, w = pair(image_size)
        if min(h, w, channels, num_classes, width) < 1 or depth < 0 or not init_scale > 0:
            raise ConfigError(f"invalid MLP: image {h}x{w}x{channels}, {num_classes} classes, width {width}, "
                              f"depth {depth}, init_scale {init_scale}")
        self.image_hw, self.channels, self.num_classes, self.depth = (h, w), channels, num_classes, depth
        sizes = [h * w * channels] + [width] * depth + [num_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:]))
        if init_scale != 1.0:
            for layer in self.layers:
                layer.weight.data.mul_(init_scale)
                if layer.bias is not None:
                    layer.bias.data.mul_(init_scale)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        from ..errors import DataError

        if x.dim() != 4 or tuple(x.shape[1:]) != (self.channels, *self.image_hw):
            raise DataError(f"ReLUMLP expects images of shape (batch, {self.channels}, {self.image_hw[0]}, "
                            f"{self.image_hw[1]}), got {tuple(x.shape)}")
        h = x.flatten(1)
        for layer in self.layers[:-1]:
            h = self.act(layer(h))
        return self.layers[-1](h)


register_model("mlp_nano", ReLUMLP, "bias-free ReLU MLP for 8x8 digits (width 256, 3 hidden layers)", image_size=8,
               channels=1, num_classes=10, width=256, depth=3)
register_model("mlp_micro", ReLUMLP, "bias-free ReLU MLP, the feature-ansatz reference (28x28, width 1024, depth 3)",
               image_size=28, channels=1, num_classes=10, width=1024, depth=3)
