"""The in-memory labelled data set that every source returns, and the registry of ``--data`` sources."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from ..errors import DataError

__all__ = ["LabelledData", "register_source", "load_data", "list_sources", "seeded_split"]


@dataclass
class LabelledData:
    """Train and test tensors of one data set.

    ``x_*`` are float images (n, C, H, W) standardised with the per-channel ``mean`` and ``std`` of the training split
    (kept so that images can be shown again: ``x * std + mean``); ``y_*`` are int64 labels in ``[0, num_classes)``.
    """

    name: str
    spec: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def __post_init__(self):
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if len(x) == 0:
                raise DataError(f"{self.spec}: the {split} split is empty")
            if len(x) != len(y):
                raise DataError(f"{self.spec}: {len(x)} {split} images but {len(y)} labels")
            if x.dim() != 4:
                raise DataError(f"{self.spec}: images must be (n, C, H, W), got {tuple(x.shape)}")
            if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
                raise DataError(f"{self.spec}: {split} labels outside [0, {self.num_classes})")

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.x_train.shape[2:])

    @property
    def train_set(self):
        """The training split as a batch-fetching :class:`~srr.data.images.TensorImages` dataset."""
        from .images import TensorImages

        return TensorImages(self.x_train, self.y_train)

    @property
    def test_set(self):
        from .images import TensorImages

        return TensorImages(self.x_test, self.y_test)

    def model_overrides(self) -> dict:
        """The ``create_model`` overrides that make a model fit this data."""
        h, w = self.image_size
        return {"image_size": h if h == w else [h, w], "channels": self.channels, "num_classes": self.num_classes}

    def unnormalize(self, x: Tensor) -> Tensor:
        """Undo the standardisation (for display)."""
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return x * std + mean

    @classmethod
    def from_raw(cls, name: str, spec: str, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor,
                 num_classes: int | None = None) -> "LabelledData":
        """Standardise raw float images with the training split's per-channel statistics."""
        x_train, x_test = x_train.float(), x_test.float()
        if len(x_train) == 0:
            raise DataError(f"{spec}: the train split is empty")
        mean = x_train.mean(dim=(0, 2, 3))
        std = x_train.std(dim=(0, 2, 3)).clamp_min(1e-6)
        norm = lambda x: (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)  # noqa: E731
        k = num_classes if num_classes is not None else int(max(y_train.max(), y_test.max())) + 1
        return cls(name, spec, norm(x_train), y_train.long(), norm(x_test), y_test.long(), k,
                   mean.tolist(), std.tolist())


def seeded_split(n: int, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices of a fixed random train/test split of ``n`` items."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


@dataclass(frozen=True)
class Source:
    name: str
    loader: Callable[[str | None, str], LabelledData]
    description: str
    takes_path: bool
    task: str = "image"  # "image" (LabelledData) or "lm" (srr.data.text.TextData)


_SOURCES: dict[str, Source] = {}


def register_source(name: str, description: str, takes_path: bool = False, task: str = "image"):
    """Decorator: register ``loader(argument, spec)`` under ``name`` for ``--data name[:argument]``.

    ``task="image"`` loaders return :class:`LabelledData`; ``task="lm"`` loaders return text (``TextData``).
    """

    def wrap(fn):
        _SOURCES[name] = Source(name, fn, description, takes_path, task)
        return fn

    return wrap


def list_sources(task: str | None = None) -> dict[str, str]:
    return {n: s.description for n, s in sorted(_SOURCES.items()) if task is None or s.task == task}


def load_data(spec: str, task: str = "image"):
    """Load a data set from a spec: ``digits``, ``idx:PATH_DIR``, ``synthetic`` or ``synthetic:k=4,rank=3,...``.

    ``task`` names the kind of data the caller expects: ``"image"`` (:class:`LabelledData`, the default) or
    ``"lm"`` (text, e.g. ``text:PATH``); a source of the other kind raises :class:`DataError`.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DataError("empty data specification; try 'digits'")
    name, _, arg = spec.partition(":")
    source = _SOURCES.get(name)
    if source is None:
        close = difflib.get_close_matches(name, list(_SOURCES), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise DataError(f"unknown data source {name!r}{hint} (known: {', '.join(sorted(_SOURCES))})")
    if source.task != task:
        kinds = {"image": "labelled images", "lm": "text for language models (--task lm)"}
        raise DataError(f"data source {name!r} gives {kinds.get(source.task, source.task)}, not "
                        f"{kinds.get(task, task)}; sources for that: {', '.join(list_sources(task)) or 'none'}")
    if source.takes_path and not arg:
        raise DataError(f"data source {name!r} needs a path: --data {name}:PATH")
    return source.loader(arg or None, spec)
