"""Run logs: ``metrics.jsonl`` (one object per round: an epoch, or ``eval_every`` steps), ``steps.jsonl`` (every ``log_every`` steps) and, when the
``tensorboard`` package is installed (``pip install srr[tensorboard]``), TensorBoard event files in ``tensorboard/``.

Only rank 0 logs. On resume, records after the checkpoint's position are dropped first (a run killed after
logging but before checkpointing would otherwise repeat them), as is a torn last line.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..io import append_jsonl, atomic_write_text

__all__ = ["RunLogger"]


def _truncate(path: Path, keep) -> None:
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if keep(record):
            kept.append(line)
    atomic_write_text(path, "".join(ln + "\n" for ln in kept))


class RunLogger:
    def __init__(self, out: Path | None, enabled: bool, tensorboard: bool, resume_round: int | None = None,
                 resume_step: int | None = None, round_key: str | None = "epoch"):
        self.out = out if enabled else None
        self.round_key = round_key
        self.writer = None
        self.tensorboard_missing = False
        if self.out is None:
            return
        metrics, steps = self.out / "metrics.jsonl", self.out / "steps.jsonl"
        if resume_step is None:
            for f in (metrics, steps):
                f.unlink(missing_ok=True)
        else:
            if round_key:
                _truncate(metrics, lambda r: r.get(round_key, 0) <= resume_round)
            else:
                _truncate(metrics, lambda r: r.get("step", 0) <= resume_step)
            _truncate(steps, lambda r: r.get("step", 0) <= resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.tensorboard_missing = True
            else:
                self.writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=resume_step)

    def step(self, record: dict) -> None:
        if self.out is None:
            return
        append_jsonl(self.out / "steps.jsonl", record)
        if self.writer is not None:
            for key in record:
                if key not in ("step", self.round_key) and isinstance(record[key], (int, float)):
                    self.writer.add_scalar(f"train/{key}", record[key], record["step"])

    def round(self, record: dict, step: int) -> None:
        if self.out is None:
            return
        append_jsonl(self.out / "metrics.jsonl", record)
        if self.writer is not None:
            for key, value in record.items():
                if key not in (self.round_key, "step", "seconds") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"eval/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
