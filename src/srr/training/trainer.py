"""Supervised training of a registered image model: AdamW, warm-up plus cosine, per-epoch evaluation and logs.

Files written to ``out_dir``: ``metrics.jsonl`` (one object per epoch: epoch, train_loss, test_loss, test_accuracy,
seconds), ``summary.json`` (final figures and the data spec) and the model in ``save_pretrained`` form.
Deterministic for a fixed seed on the CPU.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import LabelledData
from ..errors import DataError, NonFiniteError
from ..io import append_jsonl, atomic_write_json, ensure_writable_dir
from ..models import count_parameters, save_pretrained
from .schedule import parameter_groups, warmup_cosine

__all__ = ["TrainConfig", "train", "evaluate", "pick_device", "shift_augment"]


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    shift: int = 0  # random translation by up to this many pixels (0: no augmentation)
    seed: int = 0
    device: str | None = None


def pick_device(name: str | None = None) -> torch.device:
    """``name`` if given (checked: see :func:`srr.device.pick_device`), else CUDA when available, else CPU."""
    from ..device import pick_device as checked

    return checked(name)


def check_outputs(logits: torch.Tensor, data: LabelledData) -> None:
    """The classifier must have an output for every label of the data (else cross-entropy fails mid-run)."""
    if logits.shape[-1] < data.num_classes:
        raise DataError(f"{data.spec} has labels up to {data.num_classes - 1} but the model has {logits.shape[-1]} "
                        f"outputs; drop --set num_classes or set it to {data.num_classes}")


def shift_augment(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by a random integer offset in [-max_shift, max_shift]² (edges replicated)."""
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = (dy.view(b, 1) + torch.arange(h)).view(b, 1, h, 1).expand(b, x.shape[1], h, w + 2 * max_shift)
    out = padded.gather(2, rows.to(x.device))
    cols = (dx.view(b, 1) + torch.arange(w)).view(b, 1, 1, w).expand(b, x.shape[1], h, w)
    return out.gather(3, cols.to(x.device))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
             device: torch.device | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = model(xb)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(-1) == yb).sum())
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def train(model: nn.Module, data: LabelledData, config: TrainConfig, out_dir: str | Path | None = None,
          progress: bool = True) -> dict:
    """Train ``model`` on ``data`` with ``config``; returns the summary (also written to ``out_dir``)."""
    device = pick_device(config.device)
    out = ensure_writable_dir(out_dir) if out_dir is not None else None
    if out is not None and (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()
    model.to(device)
    with torch.no_grad():  # a mismatch between model and data fails here, before any progress bar
        check_outputs(model.eval()(data.x_train[:2].to(device)), data)
    steps_per_epoch = math.ceil(len(data.x_train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr)
    scheduler = warmup_cosine(optimizer, total, round(config.warmup_epochs * steps_per_epoch))
    g = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    history = []
    with tqdm(total=total, disable=not progress, desc="train", unit="step", dynamic_ncols=True) as bar:
        for epoch in range(1, config.epochs + 1):
            train_loss = _train_epoch(model, data, config, optimizer, scheduler, g, device, bar, epoch)
            test_loss, test_acc = evaluate(model, data.x_test, data.y_test, device=device)
            record = {"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss, "test_accuracy": test_acc,
                      "seconds": time.perf_counter() - start}
            history.append(record)
            bar.set_postfix(epoch=epoch, test_acc=f"{test_acc:.4f}")
            if out is not None:
                append_jsonl(out / "metrics.jsonl", record)
    model_name = getattr(model, "config", {}).get("model", type(model).__name__)
    summary = {
        "model": model_name,
        "data": data.spec,
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "test_loss": history[-1]["test_loss"] if history else None,
        "parameters": count_parameters(model),
        "seconds": time.perf_counter() - start,
        "epochs": config.epochs,
        "device": str(device),
        "config": asdict(config),
    }
    if out is not None:
        save_pretrained(model.cpu(), out, extra={"data": data.spec})
        model.to(device)
        atomic_write_json(out / "summary.json", summary)
    return summary


def _train_epoch(model, data, config, optimizer, scheduler, g, device, bar, epoch) -> float:
    """One pass over the shuffled training split; returns the mean training loss."""
    model.train()
    n = len(data.x_train)
    perm = torch.randperm(n, generator=g)
    loss_sum = 0.0
    for i in range(0, n, config.batch_size):
        idx = perm[i:i + config.batch_size]
        xb = shift_augment(data.x_train[idx], config.shift, g).to(device)
        yb = data.y_train[idx].to(device)
        loss = F.cross_entropy(model(xb), yb, label_smoothing=config.label_smoothing)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteError(f"training loss became {value} at step {bar.n} (epoch {epoch})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += value * len(idx)
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{value:.3f}")
    return loss_sum / n
