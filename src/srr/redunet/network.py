"""ReduNet: a deep network whose layers are computed, one after the other, from data and labels (see docs/models.md).

:meth:`ReduNet.build` constructs layer ℓ from the features Z^ℓ of the training samples (E, C_j, γ_j; see
:class:`~srr.redunet.layer.ReduLayer`), then propagates them with the *estimated* memberships π̂ (not the labels),
exactly as a new sample would be, to obtain Z^{ℓ+1}. No back-propagation is involved. The built network maps new
samples without labels (:meth:`forward`), and predicts a class from the memberships π̂ of its last layer
(:meth:`predict`). Inputs are flattened and L2-normalised (vector form) or, for signals and images, passed through an
optional random circular convolutional lift (:class:`~srr.redunet.lift.Lift`) and L2-normalised over the whole
sample. ``eps`` is ε, not ε² (the official code's ``eps=0.1`` is ``eps=sqrt(0.1)``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..checks import check_bool, check_int
from ..errors import CheckpointError, ConfigError, DataError
from ..models.config import MAX_CLASSES, MAX_DEPTH, MAX_WIDTH, ModelConfig
from ..models.hub import PretrainedMixin, from_pretrained, save_pretrained
from ..models.registry import register_model
from ..settings import option
from .layer import DEFAULT_EPS, DEFAULT_ETA, DEFAULT_LAM, ReduLayer, check_layer_args, normalize_features
from .lift import Lift
from .operators import check_labels

__all__ = ["ReduNet", "ReduNetConfig"]


@dataclass
class ReduNetConfig(ModelConfig):
    """A ReduNet: layers constructed from data in closed form (see :class:`ReduNet`)."""

    num_classes: int = option(10, "number of classes", low=1, high=MAX_CLASSES)
    layers: int = option(20, "number of layers", low=1, high=MAX_DEPTH)
    channels: int = option(64, "feature width (vector form) or channels (shift-invariant form)", low=1,
                           high=MAX_WIDTH)
    spatial: list = option(default_factory=list, help="spatial axes: [] (vectors), [T] or [H, W]")
    in_channels: int | None = option(None, "input channels of the random lift (shift-invariant form)", low=1,
                                     high=4096)
    kernel: int = option(3, "lift filter size", low=1, high=1 << 12)
    eta: float = option(DEFAULT_ETA, "step size η", low=0.0, high=1e6, low_open=True)
    eps: float = option(DEFAULT_EPS, "distortion ε, not ε² (the official eps=0.1 is ε²)", low=1e-100, high=1e100,
                        low_open=True)
    lam: float = option(DEFAULT_LAM, "membership sharpness λ", low=0.0, high=1e12, low_open=True)
    relu: bool = option(True, "a ReLU after the lift")
    seed: int = option(0, "seed of the lift's filters", low=0, high=(1 << 63) - 1)
    dtype: str = option("float32", "precision of the features and operators", choices=("float32", "float64"))

    task: ClassVar[str] = "features"
    meta_buildable: ClassVar[bool] = False

    def check(self) -> None:
        super().check()
        if not isinstance(self.spatial, list) or len(self.spatial) > 2 or not all(
                isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 1 << 16 for s in self.spatial):
            raise ConfigError(f"spatial must be [], [T] or [H, W] of positive integers, got {self.spatial!r}")
        frequencies = math.prod(self.spatial) if self.spatial else 1
        complex_factor = 2 if self.spatial else 1
        width = 8 if self.dtype == "float64" else 4
        self.parameter_bytes = (self.num_classes + 1) * self.layers * frequencies * self.channels ** 2 * \
            complex_factor * width

    def parameter_estimate(self) -> int:
        """Entries of the operators E and C_j of every layer (counting a complex entry as two)."""
        return self.parameter_bytes // (8 if self.dtype == "float64" else 4)

Callback = Callable[[int, Tensor, "Tensor | None"], None]


class ReduNet(PretrainedMixin, nn.Module):
    """``layers`` ReduNet layers over features of shape (channels, *spatial), with an optional lift.

    * vector form: ``ReduNet(num_classes, layers, channels=d)``; any input (m, …) with d entries per sample.
    * 1-D / 2-D shift-invariant form: ``spatial=(T,)`` or ``(H, W)``; with ``in_channels`` a random lift maps
      (m, in_channels, *spatial) to ``channels`` channels with filters of size ``kernel``.
    """

    def __init__(self, num_classes: int, layers: int, channels: int, spatial: tuple[int, ...] = (),
                 in_channels: int | None = None, kernel: int = 3, eta: float = DEFAULT_ETA, eps: float = DEFAULT_EPS,
                 lam: float = DEFAULT_LAM, relu: bool = True, seed: int = 0, dtype: torch.dtype = torch.float32):
        super().__init__()
        layers = check_int(layers, "layers", low=1)
        checked = check_layer_args(channels, num_classes, spatial, eta, eps, lam, dtype, layers=layers)
        num_classes, channels, spatial = checked["num_classes"], checked["channels"], checked["spatial"]
        eta, lam = checked["eta"], checked["lam"]
        in_channels = None if in_channels is None else check_int(in_channels, "in_channels", low=1)
        kernel, seed, relu = check_int(kernel, "kernel", low=1), check_int(seed, "seed"), check_bool(relu, "relu")
        self.num_classes, self.channels, self.spatial, self.dtype = num_classes, channels, spatial, dtype
        if in_channels is not None:
            if not spatial:
                raise ConfigError("the convolutional lift needs spatial axes (spatial=(T,) or (H, W))")
            if kernel > min(spatial):
                raise ConfigError(f"lift kernel {kernel} exceeds the signal size {spatial}")
            self.lift: nn.Module | None = Lift(in_channels, channels, kernel, len(spatial), relu=relu, seed=seed)
        else:
            self.lift = None
        self.layers = nn.ModuleList(
            [ReduLayer(channels, num_classes, spatial, eta, eps, lam, dtype) for _ in range(layers)])
        self.built = False
        self.config = ReduNetConfig(num_classes=num_classes, layers=layers, channels=channels, spatial=list(spatial),
                                    in_channels=in_channels, kernel=kernel, eta=float(eta), eps=self.layers[0].eps,
                                    lam=float(lam), relu=relu, seed=seed, dtype=str(dtype).removeprefix("torch."))
        self.name = "redunet"

    @classmethod
    def from_config(cls, config: ReduNetConfig) -> "ReduNet":
        args = config.to_dict()
        args["dtype"] = getattr(torch, args["dtype"])
        args["spatial"] = tuple(args["spatial"])
        return cls(**args)

    def on_load(self) -> None:
        self.built = True

    @property
    def eps(self) -> float:
        return self.layers[0].eps

    def extra_repr(self) -> str:
        return f"built={self.built}"

    def features_in(self, x: Tensor) -> Tensor:
        """The layer-0 features: lifted (if there is a lift), reshaped to (m, C, *spatial), unit norm."""
        if not torch.is_tensor(x) or x.dim() < 1:
            raise DataError("ReduNet input must be a tensor with samples along the first axis")
        if x.is_complex():
            raise DataError(f"ReduNet input is complex ({x.dtype}); it takes real samples")
        x = x.to(self.dtype)
        if self.lift is not None:
            x = self.lift(x)
        shape = (self.channels, *self.spatial)
        if not self.spatial:
            x = x.reshape(x.shape[0], -1)
        if tuple(x.shape[1:]) != shape:
            raise DataError(f"ReduNet expects samples of shape {shape}{' after the lift' if self.lift else ''}, "
                            f"got {tuple(x.shape[1:])}")
        return normalize_features(x)

    @torch.no_grad()
    def build(self, x: Tensor, labels: Tensor, callback: Callback | None = None, progress: bool = False,
              chunk: int = 1024) -> Tensor:
        """Construct every layer from training samples ``x`` and their ``labels``; returns the output features.

        ``callback(ℓ, Z, π̂)`` is called with the features before the first layer (ℓ = 0, π̂ = None) and after each
        layer ℓ = 1…L with the memberships that layer estimated.
        """
        chunk = check_int(chunk, "chunk", low=1)
        z = self.features_in(x)
        labels = check_labels(labels, len(z), self.num_classes).to(z.device)
        if callback:
            callback(0, z, None)
        for ell, layer in enumerate(tqdm(self.layers, desc="ReduNet layers", unit="layer", disable=not progress), 1):
            layer.construct(z, labels)
            pi, z = _chunked(layer, z, chunk)
            if callback:
                callback(ell, z, pi)
        self.built = True
        return z

    def check_built(self) -> None:
        if not self.built:
            raise ConfigError("this ReduNet is not built yet: call build(x, labels) first")

    @torch.no_grad()
    def transform(self, x: Tensor, chunk: int = 1024) -> tuple[Tensor, Tensor]:
        """Output features and the last layer's memberships π̂ (m, K), ``chunk`` samples at a time (no gradient)."""
        return self.run(x, chunk)

    def run(self, x: Tensor, chunk: int = 1024) -> tuple[Tensor, Tensor]:
        """As :meth:`transform`, differentiable with respect to the operators (for fine-tuning)."""
        self.check_built()
        chunk = check_int(chunk, "chunk", low=1)
        if not torch.is_tensor(x) or x.dim() < 1:
            raise DataError("ReduNet input must be a tensor with samples along the first axis")
        feats, pis = [], []
        for i in range(0, len(x), chunk):
            z = self.features_in(x[i:i + chunk])
            pi = None
            for layer in self.layers:
                pi, z = layer.memberships_and_step(z)
            feats.append(z)
            pis.append(pi)
        if not feats:
            raise DataError("ReduNet received zero samples")
        return torch.cat(feats), torch.cat(pis)

    def forward(self, x: Tensor) -> Tensor:
        """Output features (m, C, *spatial) of new samples; no labels needed. Differentiable."""
        return self.run(x)[0]

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Class estimate ``argmax_j π̂_j`` of the last layer (shift-invariant in the shift-invariant form)."""
        return self.transform(x)[1].argmax(dim=1)


    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write the built network in ``save_pretrained`` form (``config.json`` and ``model.safetensors``); it loads
        with :func:`srr.from_pretrained` like every registered model."""
        self.check_built()
        return save_pretrained(self, directory, extra)

    save_pretrained = save

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "ReduNet":
        """Rebuild a network written by :meth:`save` (safetensors only; nothing is unpickled)."""
        from ..models.hub import read_config

        name = read_config(directory)["model"]
        if name != "redunet":
            raise CheckpointError(f"{directory} holds {name}, not a ReduNet")
        net = from_pretrained(directory)
        if not isinstance(net, cls):
            raise CheckpointError(f"{directory} holds a {type(net).__name__}, not a ReduNet")
        return net


@register_model
def redunet():
    """ReduNet constructed in closed form (vector form; set channels, spatial, in_channels for images)"""
    return ReduNetConfig()


ReduNetConfig.model_cls = ReduNet


def _chunked(layer: ReduLayer, z: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    pis, out = [], []
    for i in range(0, len(z), chunk):
        pi, nz = layer.memberships_and_step(z[i:i + chunk])
        pis.append(pi)
        out.append(nz)
    return torch.cat(pis), torch.cat(out)
