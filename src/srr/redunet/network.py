"""ReduNet: a deep network whose layers are computed, one after the other, from data and labels (REFERENCE §6).

:meth:`ReduNet.build` constructs layer ℓ from the features Z^ℓ of the training samples (E, C_j, γ_j; see
:class:`~srr.redunet.layer.ReduLayer`), then propagates them with the *estimated* memberships π̂ (not the labels),
exactly as a new sample would be, to obtain Z^{ℓ+1}. No back-propagation is involved. The built network maps new
samples without labels (:meth:`forward`), and predicts a class from the memberships π̂ of its last layer
(:meth:`predict`). Inputs are flattened and L2-normalised (vector form) or, for signals and images, passed through an
optional random circular convolutional lift (:class:`~srr.redunet.lift.Lift`) and L2-normalised over the whole
sample. ``eps`` is ε, not ε² (the official code's ``eps=0.1`` is ``eps=sqrt(0.1)``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..checks import check_bool, check_int
from ..errors import CheckpointError, ConfigError, DataError, DataFileNotFoundError
from ..io import atomic_path, atomic_write_json
from .layer import DEFAULT_EPS, DEFAULT_ETA, DEFAULT_LAM, ReduLayer, check_layer_args, normalize_features
from .lift import Lift
from .operators import check_labels

__all__ = ["ReduNet"]

Callback = Callable[[int, Tensor, "Tensor | None"], None]


class ReduNet(nn.Module):
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
        self.config = {"num_classes": num_classes, "layers": layers, "channels": channels, "spatial": list(spatial),
                       "in_channels": in_channels, "kernel": kernel, "eta": eta, "eps": self.layers[0].eps,
                       "lam": lam, "relu": relu, "seed": seed, "dtype": str(dtype).removeprefix("torch.")}

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


    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (``{"kind": "redunet", "args": …}``) and ``model.safetensors`` atomically."""
        from safetensors.torch import save_file

        from .. import __version__

        self.check_built()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(tensors, str(tmp))
        atomic_write_json(directory / "config.json", {"kind": "redunet", "args": self.config,
                                                      "srr_version": __version__})
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "ReduNet":
        """Rebuild a network written by :meth:`save` (safetensors only; nothing is unpickled)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg_path, weights = directory / "config.json", directory / "model.safetensors"
        if not cfg_path.is_file() or not weights.is_file():
            raise DataFileNotFoundError(f"{directory} holds no saved ReduNet (config.json and model.safetensors)")
        try:
            config = json.loads(cfg_path.read_text(encoding="utf-8"))
            args = dict(config["args"]) if config.get("kind") == "redunet" else None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            args = None
        if args is None:
            raise CheckpointError(f"{cfg_path} does not describe a ReduNet")
        args["dtype"] = getattr(torch, str(args.get("dtype", "float32")))
        args["spatial"] = tuple(args.get("spatial", ()))
        net = cls(**args)
        try:
            net.load_state_dict(load_file(str(weights)), strict=True)
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise CheckpointError(f"{weights} does not fit the ReduNet of {cfg_path}: "
                                  f"{str(exc).splitlines()[0]}") from None
        net.built = True
        return net


def _chunked(layer: ReduLayer, z: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    pis, out = [], []
    for i in range(0, len(z), chunk):
        pi, nz = layer.memberships_and_step(z[i:i + chunk])
        pis.append(pi)
        out.append(nz)
    return torch.cat(pis), torch.cat(out)
