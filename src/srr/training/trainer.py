"""Supervised training of a registered image model on PyTorch's own engines: DistributedDataParallel under
``torchrun``, ``torch.amp`` autocast (+ GradScaler for fp16), ``torch.compile``, DataLoader workers.

One optimiser step consumes one global batch of ``batch_size`` images, split over the W ranks and then into
``accumulate`` micro-batches; micro-batch m of rank r contributes ``loss_m · W·b_m / b`` so that the averaged gradient
is the gradient of the global batch's mean loss, whatever W and ``accumulate`` are. Files written to ``out_dir`` by
rank 0: ``run.json`` (what is being trained), ``metrics.jsonl`` (per epoch: epoch, train_loss, test_loss,
test_accuracy, seconds), ``steps.jsonl``, ``checkpoints/`` (see :mod:`srr.training.checkpoint`), TensorBoard events,
and at the end ``summary.json`` and the model in ``save_pretrained`` form. A run is exactly resumable: with the same
settings, ``train(..., resume=True)`` continues from the latest checkpoint to the same final weights.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data.images import as_batch
from ..errors import CheckpointError, ConfigError, NonFiniteError, SrrError, one_line
from ..io import atomic_write_json, ensure_writable_dir
from ..models import count_parameters, save_pretrained
from .augment import Augmenter, shift_augment  # noqa: F401  (srr.training.mcr2 imports shift_augment from here)
from .checkpoint import find_latest, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import GlobalBatchSampler, all_reduce_sum, cleanup_distributed, gather_objects, setup_distributed
from .distributed import pick_device  # noqa: F401  (srr.training.lm imports pick_device from here)
from .logger import RunLogger
from .optim import build_optimizer
from .preflight import check_outputs
from .rng import capture_rng, restore_rng
from .schedule import parameter_groups, warmup_cosine
from .transfer import load_initial_weights

__all__ = ["train", "evaluate"]

EVAL_BATCH = 512


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH,
             device: torch.device | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on in-memory ``(x, y)``."""
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


def _worker_message(exc: SrrError) -> str:
    """A DataLoader worker re-raises with the worker's traceback inside the message: keep its last line."""
    text = str(exc)
    return text.strip().splitlines()[-1].split(": ", 1)[-1] if "Traceback" in text else text


def train(model: nn.Module, data, config: TrainConfig, out_dir: str | Path | None = None, progress: bool = True,
          resume: bool = False, run_info: dict | None = None) -> dict:
    """Train ``model`` on ``data`` (any ``--data`` source) with ``config``; returns the summary (also written to
    ``out_dir``). ``resume=True`` continues from the newest complete checkpoint in ``out_dir``."""
    config.validate()
    info = setup_distributed(config.device)
    try:
        return _Run(model, data, config, out_dir, progress, resume, run_info or {}, info).run()
    except SrrError as exc:
        if "Traceback" in str(exc):
            raise type(exc)(_worker_message(exc)) from None
        raise
    finally:
        cleanup_distributed(info)


class _Run:
    def __init__(self, model, data, config: TrainConfig, out_dir, progress, resume, run_info, info):
        self.model, self.data, self.c, self.info, self.progress = model, data, config, info, progress
        self.device = info.device
        if out_dir is None and (resume or config.checkpoint_every):
            raise ConfigError("checkpoints and --resume need an output folder")
        self.out = Path(out_dir) if out_dir is not None else None
        if self.out is not None and info.is_main:
            ensure_writable_dir(self.out)
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("fp16 needs a CUDA device (use --precision bf16 on the CPU)")
        if config.init and not resume:
            report = load_initial_weights(model, config.init)
            if info.is_main and report["skipped"]:
                print(f"init from {config.init}: kept the fresh {', '.join(report['skipped'][:4])}")
        model.to(self.device)
        self.augment = Augmenter(config, data.mean, data.std, data.num_classes)
        with torch.no_grad():  # a mismatch between model and data fails here, before any progress bar
            logits = model.eval()(self.augment.eval(data.test_set.__getitems__([0, 1])[0].to(self.device)))
            check_outputs(logits, data.num_classes, data.spec)
        w, k = info.world_size, config.accumulate
        self.data_gen = torch.Generator().manual_seed(config.seed)
        # alone, sampling and augmentation share one stream (the CPU demo's); with ranks each rank augments its own
        self.aug_gen = self.data_gen if w == 1 else torch.Generator().manual_seed(config.seed + 7919 * (info.rank + 1))
        self.sampler = GlobalBatchSampler(len(data.train_set), config.batch_size, self.data_gen, info.rank, w, w * k)
        self.steps_per_epoch = len(self.sampler.sizes)
        if self.steps_per_epoch == 0:
            raise ConfigError(f"{len(data.train_set)} training images cannot feed {w} ranks x {k} micro-batches")
        self.total = self.steps_per_epoch * config.epochs
        groups = parameter_groups(model, config.weight_decay)
        self.optimizer = build_optimizer(config.optimizer, groups, config.lr, (config.beta1, config.beta2))
        self.scheduler = warmup_cosine(self.optimizer, self.total, round(config.warmup_epochs * self.steps_per_epoch),
                                       config.min_lr_ratio,
                                       self.steps_per_epoch if config.schedule == "epoch" else None)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
        self.net = model
        if info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if config.compile:
            self.net = torch.compile(self.net)
        loader_args = {"collate_fn": as_batch, "num_workers": config.workers,
                       "pin_memory": self.device.type == "cuda", "persistent_workers": config.workers > 0}
        self.loader = DataLoader(data.train_set, batch_sampler=self.sampler, **loader_args)
        shard = list(range(info.rank, len(data.test_set), w))
        self.eval_loader = DataLoader(data.test_set, batch_sampler=[shard[i:i + EVAL_BATCH] for i in
                                                                    range(0, len(shard), EVAL_BATCH)], **loader_args)
        self.pos = {"epoch": 0, "batch": 0, "step": 0, "loss_sum": 0.0, "count": 0, "skipped": 0, "seconds": 0.0,
                    "train_seconds": 0.0, "images": 0, "epoch_state": None, "in_epoch": False}
        self.history: list[dict] = []
        self.pending_rng, self.resumed_from, self.last_checkpoint = None, None, None
        if resume:
            self._restore()
        if info.is_main and self.out is not None:
            atomic_write_json(self.out / "run.json", {**run_info, "data": data.spec, "train": asdict(config),
                                                      "model_config": getattr(model, "config", {}),
                                                      "world_size": w})
        self.log = RunLogger(self.out, info.is_main, config.tensorboard,
                             self.pos["epoch"] if resume else None, self.pos["step"] if resume else None)

    # -- checkpoints -------------------------------------------------------------------------------------------
    def _save(self) -> None:
        rng = gather_objects(capture_rng(self._generators()), self.info)
        if not self.info.is_main or self.out is None:
            return
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": rng, "position": dict(self.pos),
                 "history": self.history}
        meta = {"epoch": self.pos["epoch"], "batch": self.pos["batch"], "world_size": self.info.world_size,
                "steps_per_epoch": self.steps_per_epoch}
        self.last_checkpoint = save_checkpoint(self.out, self.pos["step"], self.model.state_dict(), state, meta,
                                               self.c.keep_checkpoints)

    def _generators(self) -> dict:
        return {"data": self.data_gen} if self.aug_gen is self.data_gen else {"data": self.data_gen,
                                                                              "augment": self.aug_gen}

    def _restore(self) -> None:
        folder = find_latest(self.out)
        if folder is None:
            raise CheckpointError(f"no complete checkpoint to resume from in {self.out / 'checkpoints'}")
        model_state, state, meta = load_checkpoint(folder, self.device)
        if meta.get("steps_per_epoch") != self.steps_per_epoch:
            raise CheckpointError(f"{folder} was written with {meta.get('steps_per_epoch')} steps per epoch, this run "
                                  f"has {self.steps_per_epoch}: resume with the same data and batch size")
        try:
            self.model.load_state_dict(model_state)
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{folder} does not fit this model: {one_line(exc)}") from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.pos, self.history = dict(state["position"]), list(state["history"])
        rng = state["rng"]
        if len(rng) != self.info.world_size and self.info.is_main:
            print(f"resuming {len(rng)}-rank state on {self.info.world_size} ranks: per-rank streams restart")
        self.pending_rng = rng[self.info.rank] if len(rng) == self.info.world_size else rng[0]
        self.resumed_from = str(folder)
        self.last_checkpoint = folder

    # -- the loop ----------------------------------------------------------------------------------------------
    def run(self) -> dict:
        c, pos = self.c, self.pos
        limit = min(self.total, c.max_steps) if c.max_steps else self.total
        start = time.perf_counter() - pos["seconds"]
        bar = tqdm(total=limit, initial=pos["step"], disable=not (self.progress and self.info.is_main),
                   desc="train", unit="step", dynamic_ncols=True)
        try:
            while pos["epoch"] < c.epochs and pos["step"] < limit:
                self._begin_epoch()
                self.epoch_tick = tick = time.perf_counter()
                for xb, yb in self.loader:
                    self._step(xb, yb, bar)
                    if pos["step"] >= limit:
                        break
                    if self._due() and pos["batch"] < self.steps_per_epoch:
                        self._save()
                pos["train_seconds"] += time.perf_counter() - tick
                if pos["batch"] < self.steps_per_epoch:
                    break  # stopped by max_steps inside the epoch
                self._end_epoch(start, bar)
                if self._due() and pos["step"] < limit:  # a checkpoint due at an epoch's last step waits for its
                    self._save()  # evaluation, so that it holds the epoch's record
            pos["seconds"] = time.perf_counter() - start
            if self.out is not None and (self.last_checkpoint is None or not self.last_checkpoint.name.endswith(
                    f"{pos['step']:09d}")):
                self._save()
        finally:
            bar.close()
            self.log.close()
        return self._finish(start)

    def _due(self) -> bool:
        return bool(self.c.checkpoint_every) and self.pos["step"] % self.c.checkpoint_every == 0

    def _begin_epoch(self) -> None:
        pos, pending = self.pos, self.pending_rng
        self.pending_rng = None
        if pending is not None and pos["in_epoch"]:  # resuming inside an epoch: replay its permutation, skip the
            self.data_gen.set_state(pos["epoch_state"])  # batches done, then restore the saved streams
            self.sampler.begin_epoch(pos["batch"])
            restore_rng(pending, self._generators())
            return
        if pending is not None:  # resuming between epochs
            restore_rng(pending, self._generators())
        pos.update(batch=0, loss_sum=0.0, count=0, epoch_state=self.data_gen.get_state(), in_epoch=True)
        self.sampler.begin_epoch(0)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dtype == torch.long:
            return F.cross_entropy(logits.float(), target, label_smoothing=self.c.label_smoothing)
        return F.cross_entropy(logits.float(), target)

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, bar) -> None:
        c, pos, info = self.c, self.pos, self.info
        n_global = self.sampler.global_size(pos["batch"])
        xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
        chunks = list(zip(torch.tensor_split(xb, c.accumulate), torch.tensor_split(yb, c.accumulate)))
        self.net.train()
        loss_sum, global_sum, bad = 0.0, 0.0, None
        for i, (xm, ym) in enumerate(chunks):
            last = i == len(chunks) - 1
            sync = contextlib.nullcontext() if last or not info.distributed else self.net.no_sync()
            with sync:
                xm, target = self.augment(xm, ym, self.aug_gen)
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                    loss = self._loss(self.net(xm), target)
                local = float(loss.detach())
                # summed over ranks: all agree on a non-finite loss, and the step's global mean is logged
                value = all_reduce_sum([local * len(ym)], info)[0] if info.distributed else local * len(ym)
                if not math.isfinite(value):
                    bad = value
                    break
                share = len(ym) * info.world_size / n_global  # this micro-batch's weight in the global mean, × W
                self.scaler.scale(loss if share == 1.0 else loss * share).backward()
                loss_sum += local * len(ym)
                global_sum += value
        step = pos["step"] + 1
        if bad is not None:
            self.optimizer.zero_grad(set_to_none=True)
            where = f"at step {step} (epoch {pos['epoch'] + 1}, batch {pos['batch'] + 1})"
            if not c.skip_nonfinite:
                kept = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else ""
                raise NonFiniteError(f"training loss became {bad} {where}{kept} (--skip-nonfinite skips such steps)")
            pos["skipped"] += 1
            if info.is_main:
                bar.write(f"skipped step {step}: loss {bad} {where}")
        else:
            if c.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
        self.scheduler.step()
        pos["step"], pos["batch"] = step, pos["batch"] + 1
        pos["loss_sum"] += loss_sum
        pos["count"] += len(yb) if bad is None else 0
        pos["images"] += n_global
        bar.update(1)
        if info.is_main and step % c.log_every == 0:
            mean = global_sum / n_global if bad is None else bad
            self.log.step({"step": step, "epoch": pos["epoch"] + 1, "loss": mean,
                           "lr": lr,
                           "images_per_s": pos["images"] / max(1e-9, pos["train_seconds"] + time.perf_counter()
                                                              - self.epoch_tick)})
            bar.set_postfix(epoch=pos["epoch"] + 1, loss=f"{mean:.3f}")

    @torch.no_grad()
    def _evaluate(self) -> tuple[float, float]:
        self.net.eval()
        loss_sum, correct, count = 0.0, 0, 0
        for xb, yb in self.eval_loader:
            xb, yb = self.augment.eval(xb.to(self.device)), yb.to(self.device)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits = self.net(xb).float()
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(-1) == yb).sum())
            count += len(yb)
        loss_sum, correct, count = all_reduce_sum([loss_sum, correct, count], self.info)
        return loss_sum / count, correct / count

    def _end_epoch(self, start: float, bar) -> None:
        pos = self.pos
        loss_sum, count = all_reduce_sum([pos["loss_sum"], pos["count"]], self.info)
        test_loss, test_acc = self._evaluate()
        pos["epoch"] += 1
        record = {"epoch": pos["epoch"], "train_loss": loss_sum / max(1, count), "test_loss": test_loss,
                  "test_accuracy": test_acc, "seconds": time.perf_counter() - start}
        self.history.append(record)
        self.log.epoch(record, pos["step"])
        bar.set_postfix(epoch=pos["epoch"], test_acc=f"{test_acc:.4f}")
        pos.update(batch=0, loss_sum=0.0, count=0, in_epoch=False)

    def _finish(self, start: float) -> dict:
        pos, model = self.pos, self.model
        last = self.history[-1] if self.history else {}
        summary = {
            "model": getattr(model, "config", {}).get("model", type(model).__name__),
            "data": self.data.spec,
            "test_accuracy": last.get("test_accuracy"),
            "test_loss": last.get("test_loss"),
            "parameters": count_parameters(model),
            "seconds": time.perf_counter() - start,
            "epochs": self.c.epochs,
            "steps": pos["step"],
            "skipped_steps": pos["skipped"],
            "images_per_second": pos["images"] / pos["train_seconds"] if pos["train_seconds"] else None,
            "world_size": self.info.world_size,
            "device": str(self.device),
            "resumed_from": self.resumed_from,
            "tensorboard": self.log.writer is not None,
            "config": asdict(self.c),
        }
        if self.info.is_main and self.out is not None:
            save_pretrained(model.cpu(), self.out, extra={"data": self.data.spec})
            model.to(self.device)
            atomic_write_json(self.out / "summary.json", summary)
        return summary
