"""Training loop of the causal language models: random context windows, AdamW, warm-up plus cosine, periodic
validation in nats per token and bits per byte.

Each step draws ``batch_size`` windows of ``context + 1`` consecutive tokens at uniformly random offsets of the
training split (seeded) and minimises the mean next-token cross-entropy over all positions. Validation runs over
non-overlapping windows from the start of the validation split (the same windows every time, at most
``eval_tokens`` targets), so successive figures are comparable; bits per byte = nats per token / ln 2 with the byte
tokenizer. Files written to ``out_dir``: ``metrics.jsonl`` (one object per evaluation), ``summary.json``,
``curves.png`` and the model in ``save_pretrained`` form (its config records the data spec and the tokenizer).
Deterministic for a fixed seed on the CPU.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..data.text import TextData, bits_per_byte
from ..errors import ConfigError, DataError, NonFiniteError
from ..io import append_jsonl, atomic_path, atomic_write_json, ensure_writable_dir
from ..models import count_parameters, save_pretrained
from .schedule import parameter_groups, warmup_cosine
from .trainer import pick_device

__all__ = ["LMConfig", "train_lm", "evaluate_lm", "random_windows"]


@dataclass
class LMConfig:
    steps: int = 1000
    batch_size: int = 32
    context: int | None = None  # window length; default (None) the model's context
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int | None = None  # default: 5 % of the steps
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # 0 disables clipping
    eval_every: int = 100
    eval_tokens: int = 32768  # validation targets per evaluation; 0 means the whole validation split
    seed: int = 0
    device: str | None = None

    def check(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ConfigError("steps, batch size and evaluation interval must be positive")
        if not self.lr > 0 or self.weight_decay < 0 or self.grad_clip < 0 or self.eval_tokens < 0:
            raise ConfigError("the learning rate must be > 0; weight decay, clipping and eval tokens >= 0")
        if self.context is not None and self.context < 1:
            raise ConfigError(f"context must be positive, got {self.context}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ConfigError(f"warm-up steps must be >= 0, got {self.warmup_steps}")


def random_windows(tokens: Tensor, batch_size: int, context: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``batch_size`` inputs (B, context) and their next-token targets, from uniformly random offsets."""
    starts = torch.randint(0, len(tokens) - context, (batch_size,), generator=generator)
    idx = starts.unsqueeze(1) + torch.arange(context + 1)
    windows = tokens[idx]
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def evaluate_lm(model: nn.Module, tokens: Tensor, context: int, max_tokens: int = 0, batch_size: int = 32,
                device: torch.device | None = None) -> float:
    """Mean next-token cross-entropy (nats per token) over non-overlapping windows from the start of ``tokens``.

    Windows are ``min(context, len − 1)`` long; at most ``max_tokens`` targets (0: all full windows, at least one).
    """
    device = device or next(model.parameters()).device
    c = min(context, len(tokens) - 1)
    if c < 1:
        raise DataError(f"validation text of {len(tokens)} token(s) is too short to evaluate")
    n_windows = (len(tokens) - 1) // c
    if max_tokens:
        n_windows = max(1, min(n_windows, max_tokens // c))
    starts = torch.arange(n_windows) * c
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, n_windows, batch_size):
        idx = starts[i:i + batch_size].unsqueeze(1) + torch.arange(c + 1)
        w = tokens[idx].to(device)
        logits = model(w[:, :-1])
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), w[:, 1:].reshape(-1),
                                       reduction="sum"))
    model.train(was_training)
    return total / (n_windows * c)


def train_lm(model: nn.Module, data: TextData, config: LMConfig, out_dir: str | Path | None = None,
             progress: bool = True) -> dict:
    """Train the causal language model ``model`` on ``data``; returns the summary (also written to ``out_dir``)."""
    config.check()
    context = config.context or getattr(model, "context", None)
    if context is None:
        raise ConfigError("the model has no context length; pass one in the config")
    if context > getattr(model, "context", context):
        raise ConfigError(f"context {context} exceeds the model's context of {model.context}")
    if len(data.train) <= context:
        raise DataError(f"{data.spec}: the training split holds {len(data.train)} tokens, not more than the context "
                        f"of {context}; use a longer text or a smaller --context")
    if getattr(model, "vocab_size", data.vocab_size) < data.vocab_size:
        raise ConfigError(f"the model's vocabulary ({model.vocab_size}) is smaller than the data's "
                          f"({data.vocab_size})")
    device = pick_device(config.device)
    out = ensure_writable_dir(out_dir) if out_dir is not None else None
    if out is not None and (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()
    model.to(device).train()
    warmup = config.warmup_steps if config.warmup_steps is not None else max(1, config.steps // 20)
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.95))
    scheduler = warmup_cosine(optimizer, config.steps, warmup, config.min_lr_ratio)
    g = torch.Generator().manual_seed(config.seed)
    history, train_seconds, eval_seconds, running = [], 0.0, 0.0, []
    tokens_per_step = config.batch_size * context
    with tqdm(total=config.steps, disable=not progress, desc="train lm", unit="step", dynamic_ncols=True) as bar:
        for step in range(1, config.steps + 1):
            t0 = time.perf_counter()
            x, y = random_windows(data.train, config.batch_size, context, g)
            logits = model(x.to(device))
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1))
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteError(f"training loss became {value} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            train_seconds += time.perf_counter() - t0
            running.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}")
            if step % config.eval_every == 0 or step == config.steps:
                t1 = time.perf_counter()
                val = evaluate_lm(model, data.val, context, config.eval_tokens, device=device)
                eval_seconds += time.perf_counter() - t1
                record = {"step": step, "train_loss": sum(running) / len(running), "val_loss": val,
                          "val_bpb": bits_per_byte(val), "lr": scheduler.get_last_lr()[0],
                          "tokens": step * tokens_per_step, "seconds": train_seconds + eval_seconds,
                          "tokens_per_second": step * tokens_per_step / train_seconds}
                running = []
                history.append(record)
                bar.set_postfix(loss=f"{value:.3f}", val_bpb=f"{record['val_bpb']:.3f}")
                if out is not None:
                    append_jsonl(out / "metrics.jsonl", record)
    last = history[-1]
    summary = {
        "model": getattr(model, "config", {}).get("model", type(model).__name__),
        "data": data.spec, "task": "lm", "tokenizer": data.tokenizer,
        "val_loss": last["val_loss"], "val_bpb": last["val_bpb"], "train_loss": last["train_loss"],
        "parameters": count_parameters(model), "steps": config.steps, "context": context,
        "tokens": last["tokens"], "tokens_per_second": last["tokens_per_second"],
        "train_seconds": train_seconds, "seconds": train_seconds + eval_seconds, "device": str(device),
        "config": asdict(config),
    }
    if out is not None:
        save_pretrained(model.cpu(), out, extra={"data": data.spec, "task": "lm", "tokenizer": data.tokenizer})
        model.to(device)
        atomic_write_json(out / "summary.json", summary)
        plot_curves(history, out / "curves.png", title=summary["model"])
    return summary


def plot_curves(history: list[dict], path: str | Path, title: str = "") -> None:
    """Training and validation loss in bits per byte against the step (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, [bits_per_byte(r["train_loss"]) for r in history], marker="o", label="train (mean since last)")
    ax.plot(steps, [r["val_bpb"] for r in history], marker="s", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per byte")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
