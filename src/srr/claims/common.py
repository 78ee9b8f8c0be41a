"""What the experiments share: data loaded once, a model trained quietly by the engine, losses on a split, spreads."""
from __future__ import annotations

import functools
import math
import random
import statistics

import torch
import torch.nn.functional as F

__all__ = ["data_for", "fit", "evaluate", "mean_std", "bootstrap", "shown", "arrow"]


@functools.lru_cache(maxsize=8)
def data_for(spec: str):
    """The image data of ``spec`` (loaded once per process)."""
    from ..data import load_data

    return load_data(spec)


def fit(ctx, key: str, model_name: str, data, *, seed: int, model_args: dict | None = None, train: dict | None = None,
        objective: str = "classification", objective_args: dict | None = None):
    """``(model, summary)``: ``model_name`` (with the data's own sizes and ``model_args``) trained by the engine on
    ``data`` with engine settings ``train`` and ``objective`` settings ``objective_args``, quietly. At the paper scale
    the run has a folder under the claim's work folder, with checkpoints, and an interrupted run resumes there."""
    from ..models import create_model
    from ..objectives import get_objective
    from ..settings import from_mapping
    from ..training import TrainConfig
    from ..training.engine import train as run_training

    objective_cls = get_objective(objective)
    config = from_mapping(objective_cls.Config, dict(objective_args or {}), f"claim {ctx.claim}")
    settings = {"device": "cpu", "tensorboard": False, **(train or {}), "seed": seed}
    out, resume = None, False
    if ctx.scale == "paper":
        settings.pop("device")
        settings.setdefault("checkpoint_every", 1000)
        out = ctx.workdir / "runs" / f"{key.replace('/', '-')}-{ctx.digest(key)}"  # other settings: another run
        resume = (out / "run.json").is_file()
    train_config = from_mapping(TrainConfig, settings, f"claim {ctx.claim}")
    torch.manual_seed(seed)
    model = create_model(model_name, **{**data.model_overrides(), **(model_args or {})})
    summary = run_training(model, objective_cls(config, data), train_config, out, progress=False, quiet=True,
                           resume=resume, overwrite=not resume)
    return model.cpu().eval(), summary


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` in evaluation mode."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size]).float()
        loss += float(F.cross_entropy(logits, y[i:i + batch_size], reduction="sum"))
        correct += int((logits.argmax(-1) == y[i:i + batch_size]).sum())
    return loss / len(x), correct / len(x)


def mean_std(values) -> tuple[float, float]:
    values = [float(v) for v in values]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def bootstrap(rows: list, statistic, draws: int = 1000, seed: int = 0, level: float = 0.95) -> tuple | None:
    """The ``level`` percentile interval of ``statistic(rows resampled with replacement)`` (None draws skipped)."""
    rng = random.Random(seed)
    values = sorted(v for v in (statistic([rng.choice(rows) for _ in rows]) for _ in range(draws))
                    if v is not None and math.isfinite(v))
    if len(values) < draws // 2:
        return None
    cut = (1 - level) / 2
    return values[int(cut * (len(values) - 1))], values[int((1 - cut) * (len(values) - 1))]


def shown(values, digits: int = 3) -> str:
    """``mean ± std`` of per-seed values (just the value for one seed)."""
    m, s = mean_std(values)
    return f"{m:.{digits}f}" if len(values) == 1 else f"{m:.{digits}f} ± {s:.{digits}f}"


def arrow(first: float, last: float, digits: int = 1) -> str:
    return f"{first:.{digits}f} → {last:.{digits}f}"
