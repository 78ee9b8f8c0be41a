"""MCR² on the features of any registered image encoder, evaluated by nearest subspace and k-NN.

Features are the representation the model's final linear classifier reads (``model.features(x)``: for the
transformers the pooled tokens through the head's LayerNorm), L2-normalised; the classifier itself is frozen (not
trained, so data parallelism sees no unused parameter). The loss is :class:`srr.losses.MCR2` of the *global* batch:
it depends on the features only through the Gram matrices ZᵀZ and Zᵀ Π_k Z and the class counts, which are sums over
samples, so the engine sums them over micro-batches and processes before the log-determinants and the loss is exact
for any accumulation and any number of processes. ``eps`` is ε, not ε² (the official ``--eps 0.5`` is ε²).

The raw pooled CRATE features are ISTA outputs, non-negative, and MCR² on them collapsed on digits (nearest-subspace
accuracy 0.90 after 3 epochs, 0.20 after 30, ΔR falling from 21 to 6), while through the head's LayerNorm it trains
steadily (0.94 after 30 epochs); hence the features above.

Evaluation every ``eval_every`` epochs and at the end: the features of the whole training and test splits (each
process extracts its share), classified on the test split by nearest subspace (top ``n_components`` principal
directions per class of the *training* features) and by k-NN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..analysis.classifiers import accuracy, knn, nearest_subspace
from ..errors import ConfigError
from ..losses import MCR2
from ..settings import option
from .base import Inputs, register_objective
from .images import ImageObjective, ImageObjectiveConfig

__all__ = ["MCR2Config", "MCR2Objective", "FeatureNet", "extract_features"]

FEATURE_BATCH = 512


@dataclass
class MCR2Config(ImageObjectiveConfig):
    """MCR² on L2-normalised encoder features."""

    eps: float = option(math.sqrt(0.5), "distortion ε, not ε² (default sqrt(0.5): the official --eps 0.5 is ε²)",
                        low=1e-100, high=1e100, low_open=True)
    gamma1: float = option(1.0, "scale inside the logdet of the expansion term R", low=0.0, high=1e6, low_open=True)
    gamma2: float = option(1.0, "weight of the expansion term R", low=-1e6, high=1e6)
    n_components: int = option(10, "subspace dimension of the nearest-subspace classifier", low=1, high=1 << 16)
    k: int = option(5, "neighbours of the k-NN classifier", low=1, high=1 << 16)
    eval_every: int = option(1, "evaluate the features every N epochs (and at the end)", low=1, high=1 << 20,
                             resume="free")


class FeatureNet(nn.Module):
    """``x ↦ normalize(model.features(x))``: the trained module of MCR² (the model is its submodule)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.model.features(x).float(), dim=-1)


@torch.no_grad()
def extract_features(net: nn.Module, dataset, indices: list[int], device, prepare=None,
                     batch: int = FEATURE_BATCH) -> Tensor:
    """Features of ``dataset`` items ``indices`` (on the CPU), in evaluation mode."""
    was = net.training
    net.eval()
    out = []
    for i in range(0, len(indices), batch):
        x, _ = dataset.__getitems__(indices[i:i + batch])
        x = prepare(x) if prepare is not None else x.to(device)
        out.append(net(x).cpu())
    net.train(was)
    return torch.cat(out) if out else torch.zeros(0)


@register_objective
class MCR2Objective(ImageObjective):
    """Maximal coding rate reduction of labelled features (supervised)."""

    name = "mcr2"
    default_model = "crate_nano"
    Config = MCR2Config
    defaults = {"batch_size": 512}
    decomposable = False

    def check_model(self, model: nn.Module) -> None:
        if not hasattr(model, "features"):
            raise ConfigError(f"{type(model).__name__} exposes no features(x): MCR² needs the encoder's features")
        with torch.no_grad():
            was = model.training
            model.eval()(self.eval_input(self.data.test_set.__getitems__([0, 1])[0]))
            model.train(was)

    def network(self, model: nn.Module) -> nn.Module:
        classifier = getattr(model, "mlp_head", None)
        classifier = classifier[-1] if isinstance(classifier, nn.Sequential) else getattr(model, "layers", [None])[-1]
        if isinstance(classifier, nn.Linear):
            classifier.requires_grad_(False)  # the head is not trained
        self.criterion = MCR2(self.config.eps, self.config.gamma1, self.config.gamma2,
                              num_classes=self.data.num_classes, distributed=False)
        return FeatureNet(model)

    def statistics(self, net: nn.Module, inputs: Inputs) -> dict[str, Tensor]:
        return self.criterion.statistics(net(inputs.x), inputs.target)

    def loss_from(self, stats: dict[str, Tensor]):
        terms = self.criterion.from_statistics(stats)
        return terms["loss"], {"delta_R": terms["delta_R"], "R": terms["R"].detach(), "Rc": terms["Rc"].detach()}

    def evaluate(self, net: nn.Module, engine) -> dict:
        c = self.config
        if engine.round % c.eval_every and not engine.last_round:
            return {}
        train, test = self.data.train_set, self.data.test_set
        z_train = engine.gather_rows(lambda idx: extract_features(net, train, idx, self.device, self.eval_input),
                                     len(train))
        z_test = engine.gather_rows(lambda idx: extract_features(net, test, idx, self.device, self.eval_input),
                                    len(test))
        y_train, y_test = train.y, test.y
        r = min(c.n_components, z_train.shape[1])
        k = min(c.k, len(z_train))
        return {"test_nearest_subspace": accuracy(nearest_subspace(z_train, y_train, z_test, r, self.data.num_classes),
                                                  y_test),
                "test_knn": accuracy(knn(z_train, y_train, z_test, k, self.data.num_classes), y_test)}

    @classmethod
    def summary_line(cls, s: dict) -> str:
        ns, kn = s.get("test_nearest_subspace"), s.get("test_knn")
        shown = "n/a" if ns is None else f"nearest subspace {ns:.4f}, k-NN {kn:.4f}"
        return f"{s['model']} on {s['data']} (MCR² features): {shown} ({s['parameters']:,} parameters, " \
               f"{s['seconds']:.1f} s)"

    def headline(self, record: dict) -> dict:
        return {"test_accuracy": record.get("test_nearest_subspace"),
                "test_nearest_subspace": record.get("test_nearest_subspace"), "test_knn": record.get("test_knn"),
                "train_delta_R": record.get("train_delta_R"),
                "note": "features = pooled representation before the final Linear (through the head's LayerNorm), "
                        "L2-normalised; the Linear classifier is untrained"}
