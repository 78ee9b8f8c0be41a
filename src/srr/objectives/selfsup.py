"""What the self-supervised objectives share (``dino``, ``simdino``, ``mcr2_views``): views, heads, the EMA teacher,
and the evaluation of frozen features.

* **Data.** The training split's images, labels ignored; one round is one epoch. Each micro-batch becomes 2 global
  and ``--local-crops`` local views (:mod:`srr.objectives.views`).
* **Student.** ``SelfSupNet``: the backbone (any registered image model with ``features(x)``: for the transformers the
  pooled token — [CLS] or the mean — through the head's LayerNorm) followed by a projection head: an MLP of
  ``--head-layers`` Linear layers (width ``--head-hidden``, GELU between them) to ``--head-dim`` outputs. The
  backbone's own classifier is not used (and frozen). Views of one size go through the network as one batch.
* **Teacher** (DINO, SimDINO): a copy of the student whose parameters follow it by an exponential moving average after
  every optimiser step, ``θ_t ← m θ_t + (1 − m) θ_s``, with the momentum rising from ``--momentum`` m₀ to 1 on a
  cosine over the run's steps: at step s (1-based) of S, ``m = 1 − (1 − m₀)·½(1 + cos(π (s − 1)/S))``. It sees the
  global views only, in evaluation mode and without gradients. It lives in the objective's state, so checkpoints
  hold it and a resumed run continues with it.
* **Losses** are computed from sums over the items of the *global* batch (``statistics`` / ``loss_from`` of the
  engine), so accumulation and data parallelism give the loss of the whole batch.
* **Evaluation** every ``--eval-every`` epochs and at the end, on the student backbone's features (before the head),
  L2-normalised: the weighted k-NN accuracy on the test split (the ``--knn-k`` most cosine-similar training
  features, weights ``exp(s/T)``, T = ``--knn-temperature``; :func:`srr.analysis.classifiers.weighted_knn`) against
  the first ``--knn-bank`` training images (0: all), the collapse diagnostics of the test features (coding rate at
  ε = 0.5, effective rank, mean cosine similarity between images; :mod:`srr.analysis.features`) and, at the end, a
  linear probe (``test_linear_probe``). The saved model is the student's backbone.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..analysis.classifiers import accuracy, weighted_knn
from ..analysis.features import collapse_diagnostics, linear_probe
from ..errors import ConfigError, DataError, one_line
from ..settings import option
from .base import Inputs, ObjectiveConfig
from .images import EpochSampler, ImageObjective
from .views import multi_crop

__all__ = ["SelfSupConfig", "SelfSupervised", "SelfSupNet", "ProjectionHead", "ema_momentum", "FEATURE_BATCH",
           "full_precision"]

FEATURE_BATCH = 512
DIAGNOSTIC_EPS = 0.5


@dataclass
class SelfSupConfig(ObjectiveConfig):
    """Self-supervised training on multi-crop views; evaluation of the frozen features."""

    epochs: int = option(10, "number of epochs", low=1, high=1_000_000, resume="free")
    warmup_epochs: float = option(1.0, "linear warm-up length in epochs", low=0.0, high=1e6)
    schedule: str = option("step", "cosine updated every 'step' or once per 'epoch'", choices=("step", "epoch"))
    local_crops: int = option(2, "local views per image (besides the 2 global ones)", low=0, high=64)
    local_size: int = option(0, "side of the local views in pixels (0: half the image, whole patches)", low=0,
                             high=1 << 14)
    global_scale: float = option(0.4, "global views: smallest area fraction of the crop", low=0.0, high=1.0,
                                 low_open=True)
    local_scale_min: float = option(0.05, "local views: smallest area fraction", low=0.0, high=1.0, low_open=True)
    local_scale_max: float = option(0.4, "local views: largest area fraction", low=0.0, high=1.0, low_open=True)
    view_flip: bool = option(True, "random horizontal flips of the views")
    view_noise: float = option(0.0, "Gaussian noise added to the views (standardised units)", low=0.0, high=100.0)
    head_layers: int = option(3, "Linear layers of the projection head", low=1, high=16)
    head_hidden: int = option(512, "width of the projection head's hidden layers", low=1, high=1 << 16)
    head_dim: int = option(256, "output width of the projection head (the bottleneck p)", low=1, high=1 << 16)
    eval_every: int = option(1, "evaluate the frozen features every N epochs (and at the end)", low=1,
                             high=1 << 20, resume="free")
    knn_k: int = option(20, "neighbours of the weighted k-NN evaluation", low=1, high=1 << 16)
    knn_temperature: float = option(0.07, "temperature of the weighted k-NN votes", low=0.0, high=1e3,
                                    low_open=True)
    knn_bank: int = option(0, "training images in the k-NN bank and the probe (0: all)", low=0, high=1 << 40,
                           resume="free")
    probe: bool = option(True, "fit a linear probe on the frozen features at the end", resume="free")


def full_precision(t: Tensor):
    """A context without autocast on ``t``'s device: the losses' Gram matrices and similarities in float32 at least
    (a bfloat16 Gram matrix is not positive semi-definite to round-off)."""
    return torch.autocast(t.device.type, enabled=False)


def ema_momentum(m0: float, step: int, total: int) -> float:
    """The teacher's momentum after optimiser step ``step`` (1-based) of ``total``: m₀ rising to 1 on a cosine."""
    return 1.0 - (1.0 - m0) * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / max(1, total)))


class ProjectionHead(nn.Module):
    """``layers`` Linear layers with GELU between them: d → hidden → … → out."""

    def __init__(self, dim: int, hidden: int, out: int, layers: int):
        super().__init__()
        widths = [dim] + [hidden] * (layers - 1) + [out]
        mods: list[nn.Module] = []
        for i in range(layers):
            mods.append(nn.Linear(widths[i], widths[i + 1]))
            if i < layers - 1:
                mods.append(nn.GELU())
        self.mlp = nn.Sequential(*mods)

    def forward(self, z: Tensor) -> Tensor:
        return self.mlp(z)


class SelfSupNet(nn.Module):
    """Backbone features → head, for a list of views (views of one size form one batch)."""

    def __init__(self, model: nn.Module, head: nn.Module):
        super().__init__()
        self.model, self.head = model, head

    def features(self, x: Tensor) -> Tensor:
        return self.model.features(x).float()

    def forward(self, views: list[Tensor]) -> list[Tensor]:
        out: list[Tensor | None] = [None] * len(views)
        groups: dict[tuple, list[int]] = {}
        for i, v in enumerate(views):
            groups.setdefault(tuple(v.shape[-2:]), []).append(i)
        for idx in groups.values():
            y = self.head(self.features(torch.cat([views[i] for i in idx]))).float()
            for i, part in zip(idx, y.chunk(len(idx))):
                out[i] = part
        return out


class SelfSupervised(ImageObjective):
    """Base of the self-supervised objectives (module docstring)."""

    Config = SelfSupConfig
    uses_teacher = True
    defaults = {"batch_size": 128}

    def to(self, device: torch.device) -> "SelfSupervised":
        self.device = device
        return self

    def eval_input(self, x: Tensor) -> Tensor:
        return x.to(self.device)

    def activation_bytes(self, model: nn.Module, micro_batch: int) -> int:
        h, w = self.data.image_size
        views = 2 + self.config.local_crops
        tokens = getattr(getattr(model, "config", None), "num_patches", 0) + 1
        dim, depth = getattr(model, "dim", 0), getattr(model, "depth", 0)
        return int(views * micro_batch * (3 * self.data.channels * h * w * 4 + tokens * dim * depth * 2 * 4))

    def saved_extras(self) -> dict:
        return {"data": self.data.spec, "preprocessing": self.data.preprocessing()}

    def sampler(self, batch_size, generator, rank, world, min_size):
        return EpochSampler(len(self.data.train_set), batch_size, self.config.epochs, generator, rank, world,
                            min_size)

    # -- set-up -------------------------------------------------------------------------------------------------
    def _local_size(self, model: nn.Module) -> tuple[int, int]:
        c, (h, w) = self.config, self.data.image_size
        if c.local_size:
            return c.local_size, c.local_size
        patch = getattr(model, "patch_hw", None)
        if patch is None:  # a model of one input size (an MLP): local views at the full size
            return h, w
        return (max(patch[0], (h // 2) // patch[0] * patch[0]), max(patch[1], (w // 2) // patch[1] * patch[1]))

    def check_model(self, model: nn.Module) -> None:
        if not hasattr(model, "features"):
            raise ConfigError(f"{type(model).__name__} exposes no features(x): {self.name} needs the backbone's "
                              "features")
        if self.config.local_scale_min > self.config.local_scale_max:
            raise ConfigError(f"--local-scale-min {self.config.local_scale_min} exceeds --local-scale-max "
                              f"{self.config.local_scale_max}")
        self.local_hw = self._local_size(model)
        x = self.eval_input(self.data.test_set.__getitems__([0, 1])[0])
        was = model.training
        with torch.no_grad():
            self.feature_dim = model.eval().features(x).shape[-1]
            if self.config.local_crops:
                try:
                    model.features(F.interpolate(x, size=self.local_hw, mode="bilinear", align_corners=False))
                except (DataError, RuntimeError) as exc:
                    raise ConfigError(f"{type(model).__name__} does not take local views of {self.local_hw[0]}x"
                                      f"{self.local_hw[1]} pixels ({one_line(exc)}); set --local-size or "
                                      "--local-crops 0") from None
        model.train(was)

    def build_head(self) -> nn.Module:
        c = self.config
        return ProjectionHead(self.feature_dim, c.head_hidden, c.head_dim, c.head_layers)

    def network(self, model: nn.Module) -> nn.Module:
        classifier = getattr(model, "mlp_head", None)
        classifier = classifier[-1] if isinstance(classifier, nn.Sequential) else None
        if isinstance(classifier, nn.Linear):
            classifier.requires_grad_(False)  # the classifier is not trained (nor seen by data parallelism)
        net = SelfSupNet(model, self.build_head().to(self.device))
        self.teacher = None
        if self.uses_teacher:
            self.teacher = copy.deepcopy(net).to(self.device).eval().requires_grad_(False)
        return net

    # -- views and the teacher ----------------------------------------------------------------------------------
    def prepare(self, batch, generator: torch.Generator) -> Inputs:
        x = batch[0].to(self.device, non_blocking=True)
        c = self.config
        views = multi_crop(x, generator, local=c.local_crops, local_size=self.local_hw, global_min=c.global_scale,
                           local_min=c.local_scale_min, local_max=c.local_scale_max, flip=c.view_flip,
                           noise=c.view_noise)
        return Inputs(views, None, len(x))

    @torch.no_grad()
    def teacher_outputs(self, views: list[Tensor]) -> list[Tensor]:
        return self.teacher(views[:2])

    @torch.no_grad()
    def after_step(self, net: nn.Module, step: int, total: int) -> None:
        if self.teacher is None:
            return
        m = ema_momentum(self.config.momentum, step, total)
        for pt, ps in zip(self.teacher.parameters(), net.parameters()):
            pt.mul_(m).add_(ps.detach(), alpha=1.0 - m)

    def state_dict(self) -> dict:
        if self.teacher is None:
            return {}
        return {"teacher": {k: v.detach().cpu() for k, v in self.teacher.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        if self.teacher is not None and "teacher" in state:
            self.teacher.load_state_dict(state["teacher"])

    # -- evaluation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _features(self, net: nn.Module, dataset, indices: list[int]) -> Tensor:
        was = net.training
        net.eval()
        out = [net.features(self.eval_input(dataset.__getitems__(indices[i:i + FEATURE_BATCH])[0])).cpu()
               for i in range(0, len(indices), FEATURE_BATCH)]
        net.train(was)
        return torch.cat(out) if out else torch.zeros(0)

    def evaluate(self, net: nn.Module, engine) -> dict:
        c = self.config
        if engine.round % c.eval_every and not engine.last_round:
            return {}
        net = getattr(net, "module", net)
        train, test = self.data.train_set, self.data.test_set
        bank = min(len(train), c.knn_bank) if c.knn_bank else len(train)
        z_train = engine.gather_rows(lambda idx: self._features(net, train, idx), bank)
        z_test = engine.gather_rows(lambda idx: self._features(net, test, idx), len(test))
        y_train, y_test = train.y[:bank], test.y
        k = self.data.num_classes
        out = {"test_knn": accuracy(weighted_knn(z_train, y_train, z_test, min(c.knn_k, bank), c.knn_temperature,
                                                 k), y_test)}
        out.update({f"test_{key}": v for key, v in collapse_diagnostics(z_test, DIAGNOSTIC_EPS).items()})
        if engine.last_round and c.probe:
            out["test_linear_probe"] = linear_probe(z_train, y_train, z_test, y_test, k)
        return out

    def headline(self, record: dict) -> dict:
        keys = ("test_knn", "test_linear_probe", "test_coding_rate", "test_effective_rank", "test_mean_cosine")
        return {"test_accuracy": record.get("test_knn"), **{k: record.get(k) for k in keys},
                "note": "features = the student backbone's pooled representation (before the projection head), "
                        "L2-normalised; test_accuracy is the weighted k-NN accuracy"}

    @classmethod
    def summary_line(cls, s: dict) -> str:
        knn, probe = s.get("test_knn"), s.get("test_linear_probe")
        shown = "n/a" if knn is None else f"k-NN {knn:.4f}" + ("" if probe is None else f", linear probe {probe:.4f}")
        return f"{s['model']} on {s['data']} ({cls.name}): {shown} ({s['parameters']:,} parameters, " \
               f"{s['seconds']:.1f} s)"
