"""The training engine: one loop for every objective, on PyTorch's own machinery.

``train(model, objective, config, out_dir)`` owns the optimiser (AdamW, Lion, SGD; no weight decay on norms,
biases, embeddings, positions and gains), the warm-up + cosine schedule, gradient accumulation, clipping, mixed
precision (``torch.autocast``; a GradScaler for fp16), ``torch.compile``, data parallelism under ``torchrun``
(DistributedDataParallel; gloo on the CPU, NCCL on GPUs), checkpoints with exact resume, divergence handling, the
progress bar (or one line per round without it), ``metrics.jsonl``, ``steps.jsonl``, TensorBoard, ``summary.json``,
``curves.png`` and the final ``save_pretrained``. The objective (:mod:`srr.objectives`) supplies the batches, the
loss and the evaluation.

One optimiser step consumes one global batch of ``batch_size`` items, split over the W processes and then into
``accumulate`` micro-batches:

* for a loss that is a mean over items, micro-batch m of process r contributes ``loss_m · W·b_m / B``, so that the
  averaged gradient is the gradient of the global batch's mean loss whatever W and ``accumulate`` are;
* for a loss of summed statistics (MCR²), the statistics are summed over processes (a differentiable all-reduce) and,
  with accumulation, over micro-batches: a first pass without gradients sums them and differentiates the loss with
  respect to the sums; a second pass recomputes each micro-batch (same augmentation, same random numbers) and
  back-propagates those derivatives — the exact gradient of the global batch's loss.

A run is exactly resumable: ``train(..., resume=True)`` continues from the newest complete checkpoint to the same
final weights as an uninterrupted run. SIGINT or SIGTERM stops a run at the end of the current step, writes a
checkpoint and raises :class:`RunInterrupted`; a second SIGINT aborts at once. Only process 0 writes files.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..checks import check_memory
from ..data.images import as_batch
from ..errors import CheckpointError, ConfigError, NonFiniteError, RunFolderError, SrrError, one_line
from ..io import atomic_write_json
from ..losses.distributed import all_reduce_sum as differentiable_all_reduce
from ..models import count_parameters, save_pretrained
from ..runfolder import claim_run_folder
from .checkpoint import find_latest, load_checkpoint, save_checkpoint
from .config import TrainConfig
from ..analysis.curves import plot_curves
from .distributed import all_reduce_sum, cleanup_distributed, gather_objects, setup_distributed
from .logger import RunLogger
from .optim import build_optimizer
from .rng import capture_rng, restore_rng
from .schedule import parameter_groups, warmup_cosine
from .transfer import load_initial_weights

__all__ = ["train", "Engine", "RunInterrupted"]


class RunInterrupted(SrrError):
    """A run stopped by SIGINT or SIGTERM after writing a checkpoint."""


def train(model: nn.Module, objective, config: TrainConfig, out_dir: str | Path | None = None, *,
          progress: bool = True, resume: bool = False, overwrite: bool = False, run_info: dict | None = None,
          on_start=None, quiet: bool = False) -> dict:
    """Train ``model`` with ``objective`` (an :class:`srr.objectives.Objective` holding its data) and ``config``;
    returns the summary (also written to ``out_dir``). Without ``progress`` a line per round is printed instead of
    the bar; ``quiet`` prints neither (for a caller that trains many models and reports itself). ``resume=True``
    continues from the newest complete checkpoint in ``out_dir``; a folder holding another run is refused unless
    ``overwrite``. ``on_start()`` is called (on process 0) once every check has passed and the folder is this run's,
    right before the first step."""
    info = setup_distributed(config.device)
    lock = None
    try:
        if out_dir is None and (resume or config.checkpoint_every):
            raise ConfigError("checkpoints and --resume need an output folder")
        engine = Engine(model, objective, config, out_dir, progress and not quiet, resume, run_info or {}, info)
        engine.quiet = quiet  # every check is done by now …
        if out_dir is not None:  # … before the folder is claimed: a refused run writes nothing
            lock = _claim(Path(out_dir), resume, overwrite, info)
        engine.open(resume)
        if on_start is not None and info.is_main:
            on_start()
        return engine.run()
    except SrrError as exc:
        if "Traceback" in str(exc):  # a DataLoader worker re-raises with its traceback inside the message
            raise type(exc)(str(exc).strip().splitlines()[-1].split(": ", 1)[-1]) from None
        raise
    finally:
        if lock is not None:
            lock.release()
        cleanup_distributed(info)


def _claim(out: Path, resume: bool, overwrite: bool, info):
    """Process 0 claims the folder; every process learns the outcome (and fails alike)."""
    lock, message = None, None
    if info.is_main:
        try:
            lock = claim_run_folder(out, resume=resume, overwrite=overwrite)
        except SrrError as exc:
            message = exc
    if info.distributed:
        import torch.distributed as dist

        box = [None if message is None else str(message)]
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None and message is None:
            raise RunFolderError(box[0])
    if message is not None:
        raise message
    return lock


class _StopRequest:
    """SIGINT/SIGTERM → stop at the end of the current step (a second SIGINT aborts at once)."""

    def __init__(self, enabled: bool):
        self.requested, self.enabled, self.previous = False, enabled, {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class Engine:
    def __init__(self, model, objective, config: TrainConfig, out_dir, progress, resume, run_info, info):
        self.model, self.objective, self.c, self.info, self.progress = model, objective, config, info, progress
        self.quiet = False
        self.device, self.rank, self.world = info.device, info.rank, info.world_size
        self.out = Path(out_dir) if out_dir is not None else None
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("fp16 needs a CUDA device (use --precision bf16 on the CPU)")
        if config.init and not resume:
            report = load_initial_weights(model, config.init)
            if info.is_main and report["skipped"]:
                print(f"init from {config.init}: kept the fresh {', '.join(report['skipped'][:4])}")
        model.to(self.device)
        objective.to(self.device)
        objective.check_model(model)  # a model that cannot serve the objective fails here, before any progress bar
        self.net = objective.network(model).to(self.device)
        k = config.accumulate
        self.data_gen = torch.Generator().manual_seed(config.seed)
        # alone, sampling and augmentation share one stream (the CPU demo's); with ranks each rank augments its own
        self.aug_gen = self.data_gen if self.world == 1 else \
            torch.Generator().manual_seed(config.seed + 7919 * (self.rank + 1))
        self.sampler = objective.sampler(config.batch_size, self.data_gen, self.rank, self.world, self.world * k)
        self.lengths = list(self.sampler.lengths)
        if not self.lengths or min(self.lengths) == 0:
            raise ConfigError(f"{len(objective.dataset())} training items cannot feed {self.world} process(es) x {k} "
                              f"micro-batch(es) with --batch-size {config.batch_size}")
        self.total = sum(self.lengths)
        self._check_memory()
        groups = parameter_groups(self.net, config.weight_decay)
        self.optimizer = build_optimizer(config.optimizer, groups, config.lr, (config.beta1, config.beta2))
        spr = self.lengths[0]
        self.scheduler = warmup_cosine(self.optimizer, self.total, objective.warmup_steps(config, spr),
                                       config.min_lr_ratio, objective.scheduler_unit(spr))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
        self.ddp = self.net
        if info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.fwd = torch.compile(self.ddp) if config.compile else self.ddp
        self.loader = DataLoader(objective.dataset(), batch_sampler=self.sampler, collate_fn=as_batch,
                                 num_workers=config.workers, pin_memory=self.device.type == "cuda",
                                 persistent_workers=config.workers > 0)
        self.item_size = getattr(objective, "item_size", 1)
        self.pos = {"round": 0, "batch": 0, "step": 0, "loss_sum": 0.0, "count": 0, "terms": {}, "skipped": 0,
                    "seconds": 0.0, "train_seconds": 0.0, "items": 0, "round_state": None, "in_round": False,
                    "stopped_at_loss": False}
        self.history: list[dict] = []
        self.pending_rng, self.resumed_from, self.last_checkpoint = None, None, None
        self.round, self.last_round = 0, False
        self.run_info = {**run_info, "world_size": self.world, "model": getattr(model, "name", type(model).__name__),
                         "objective": objective.name}

    def open(self, resume: bool) -> None:
        """Restore the newest checkpoint (``resume``), record the run (``run.json``) and open the logs; the folder
        is this run's by now."""
        if resume:
            self._restore()
        if self.info.is_main and self.out is not None:
            atomic_write_json(self.out / "run.json", {**self.run_info, "status": "running"})
        self.log = RunLogger(self.out, self.info.is_main, self.c.tensorboard, self.pos["round"] if resume else None,
                             self.pos["step"] if resume else None, round_key=self.objective.round_name)

    # -- helpers the objectives use -------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def all_reduce(self, values: list[float]) -> list[float]:
        return all_reduce_sum(list(values), self.info)

    def shard_batches(self, n: int, batch: int) -> list[list[int]]:
        """This process's share of ``range(n)`` (items r, r+W, …) in batches of at most ``batch``."""
        mine = list(range(self.rank, n, self.world))
        return [mine[i:i + batch] for i in range(0, len(mine), batch)]

    def gather_rows(self, fn, n: int) -> torch.Tensor:
        """``fn(indices)`` on this process's share of ``range(n)``, the rows of every process put back in order."""
        mine = fn(list(range(self.rank, n, self.world)))
        if not self.info.distributed:
            return mine
        parts = gather_objects(mine.cpu(), self.info)
        out = torch.empty((n, *parts[0].shape[1:]), dtype=parts[0].dtype)
        for r, part in enumerate(parts):
            out[r::self.world] = part
        return out

    # -- memory ---------------------------------------------------------------------------------------------------
    def _check_memory(self) -> None:
        params = count_parameters(self.net, trainable_only=True)
        state = {"adamw": 2, "lion": 1, "sgd": 1}[self.c.optimizer]
        micro = -(-self.c.batch_size // (self.world * self.c.accumulate))
        need = 4 * params * (1 + state) + self.objective.activation_bytes(self.model, micro)
        check_memory(need, f"training with --batch-size {self.c.batch_size} (gradients, optimiser state and one "
                           f"micro-batch of {micro} on each process)", self.device)

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def _generators(self) -> dict:
        return {"data": self.data_gen} if self.aug_gen is self.data_gen else {"data": self.data_gen,
                                                                              "augment": self.aug_gen}

    def _save(self) -> None:
        rng = gather_objects(capture_rng(self._generators()), self.info)
        if not self.info.is_main or self.out is None:
            return
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": rng, "position": dict(self.pos), "history": self.history,
                 "objective": self.objective.state_dict()}
        meta = {"round": self.pos["round"], "batch": self.pos["batch"], "world_size": self.world,
                "steps_per_round": self.lengths[0], "objective": self.objective.name}
        self.last_checkpoint = save_checkpoint(self.out, self.pos["step"], self.net.state_dict(), state, meta,
                                               self.c.keep_checkpoints)

    def _restore(self) -> None:
        folder = find_latest(self.out)
        if folder is None:
            raise CheckpointError(f"no complete checkpoint to resume from in {self.out / 'checkpoints'}")
        model_state, state, meta = load_checkpoint(folder, self.device)
        if meta.get("steps_per_round") != self.lengths[0]:
            raise CheckpointError(f"{folder} was written with {meta.get('steps_per_round')} steps per round, this run "
                                  f"has {self.lengths[0]}: resume with the same data and batch size")
        if meta.get("objective", self.objective.name) != self.objective.name:
            raise CheckpointError(f"{folder} was written by objective {meta.get('objective')!r}, not "
                                  f"{self.objective.name!r}")
        try:
            self.net.load_state_dict(model_state)
            self.optimizer.load_state_dict(state["optimizer"])
            self.objective.load_state_dict(state.get("objective", {}))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{folder} does not fit this model: {one_line(exc)}") from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.pos, self.history = {**self.pos, **state["position"]}, list(state["history"])
        rng = state["rng"]
        if len(rng) != self.world and self.info.is_main:
            print(f"resuming {len(rng)}-process state on {self.world} processes: per-process streams restart")
        self.pending_rng = rng[self.rank] if len(rng) == self.world else rng[0]
        self.resumed_from = str(folder)
        self.last_checkpoint = folder

    # -- the loop -------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        c, pos = self.c, self.pos
        limit = min(self.total, c.max_steps) if c.max_steps else self.total
        start = time.perf_counter() - pos["seconds"]
        bar = tqdm(total=limit, initial=pos["step"], disable=not (self.progress and self.info.is_main),
                   desc=f"train {self.objective.name}", unit="step", dynamic_ncols=True)
        interrupted = False
        with _StopRequest(self.out is not None) as stop:
            try:
                while pos["round"] < len(self.lengths) and pos["step"] < limit and not pos["stopped_at_loss"]:
                    self._begin_round()
                    tick = time.perf_counter()
                    self.round_tick = tick
                    length = self.lengths[pos["round"]]
                    for batch in self.loader:
                        self._step(batch, bar)
                        if self._agreed(stop.requested):
                            interrupted = True
                            break
                        if pos["step"] >= limit:
                            break
                        if self._due() and pos["batch"] < length:
                            self._save()
                    pos["train_seconds"] += time.perf_counter() - tick
                    if interrupted or pos["batch"] < length:
                        break  # stopped by a signal or by --max-steps inside the round
                    self._end_round(start, bar)
                    loss = self.history[-1]["train_loss"]
                    if c.stop_loss and loss is not None and loss <= c.stop_loss:
                        pos["stopped_at_loss"] = True  # saved with the position: a resumed run stays stopped
                    if self._due() and pos["step"] < limit:  # a checkpoint due at a round's last step waits for
                        self._save()  # its evaluation, so that it holds the round's record
                pos["seconds"] = time.perf_counter() - start
                if self.out is not None and (self.last_checkpoint is None or not self.last_checkpoint.name.endswith(
                        f"{pos['step']:09d}")):
                    self._save()
            finally:
                bar.close()
                self.log.close()
        if interrupted:
            self._mark("interrupted")
            where = self.last_checkpoint or "(no folder)"
            raise RunInterrupted(f"interrupted at step {pos['step']}; checkpoint {where}; continue with: srr train "
                                 f"--resume {self.out}")
        return self._finish(start)

    def _agreed(self, flag: bool) -> bool:
        if not self.info.distributed:
            return flag
        return all_reduce_sum([float(flag)], self.info)[0] > 0

    def _due(self) -> bool:
        return bool(self.c.checkpoint_every) and self.pos["step"] % self.c.checkpoint_every == 0

    def _begin_round(self) -> None:
        pos, pending = self.pos, self.pending_rng
        self.pending_rng = None
        if pending is not None and pos["in_round"]:  # resuming inside a round: replay its plan, skip the batches
            self.data_gen.set_state(pos["round_state"])  # done, then restore the saved streams
            self.sampler.begin_round(pos["round"], pos["batch"])
            restore_rng(pending, self._generators())
            return
        if pending is not None:  # resuming between rounds
            restore_rng(pending, self._generators())
        pos.update(batch=0, loss_sum=0.0, count=0, terms={}, round_state=self.data_gen.get_state(), in_round=True)
        self.sampler.begin_round(pos["round"], 0)

    def _step(self, batch, bar) -> None:
        c, pos, info = self.c, self.pos, self.info
        n_global = self.sampler.global_size(pos["batch"])
        micro = self.objective.split(batch, c.accumulate)
        self.ddp.train()
        if self.objective.decomposable:
            value, terms, bad = self._mean_loss(micro, n_global)
        else:
            value, terms, bad = self._statistics_loss(micro)
        step = pos["step"] + 1
        if bad is not None:
            self.optimizer.zero_grad(set_to_none=True)
            where = f"at step {step} ({self._where()}batch {pos['batch'] + 1})"
            if not c.skip_nonfinite:
                kept = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else ""
                raise NonFiniteError(f"training loss became {bad} {where}{kept} (--skip-nonfinite skips such steps)")
            pos["skipped"] += 1
            if info.is_main:
                bar.write(f"skipped step {step}: loss {bad} {where}")
        else:
            if c.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.net.parameters(), c.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.objective.after_step(self.net, step, self.total)
            pos["loss_sum"] += value * n_global
            pos["count"] += n_global
            for key, v in terms.items():
                pos["terms"][key] = pos["terms"].get(key, 0.0) + v * n_global
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
        self.scheduler.step()
        pos["step"], pos["batch"] = step, pos["batch"] + 1
        pos["items"] += n_global * self.item_size
        bar.update(1)
        if info.is_main and step % c.log_every == 0:
            shown = value if bad is None else bad
            record = {"step": step}
            if self.objective.round_name:
                record[self.objective.round_name] = pos["round"] + 1
            elapsed = pos["train_seconds"] + time.perf_counter() - self.round_tick
            record.update({"loss": shown, "lr": lr, f"{self.objective.unit}_per_s": pos["items"] / max(1e-9, elapsed)})
            self.log.step(record)
            bar.set_postfix(loss=f"{shown:.3f}")

    def _where(self) -> str:
        name = self.objective.round_name
        return f"{name} {self.pos['round'] + 1}, " if name else ""

    def _mean_loss(self, micro: list, n_global: int):
        """Micro-batches of a loss that is a mean over items: weighted backward passes (module docstring)."""
        info, total, terms_sum, bad = self.info, 0.0, {}, None
        for i, part in enumerate(micro):
            last = i == len(micro) - 1
            sync = contextlib.nullcontext() if last or not info.distributed else self.ddp.no_sync()
            with sync:
                inputs = self.objective.prepare(part, self.aug_gen)
                with self.autocast():
                    loss, terms = self.objective.loss(self.fwd, inputs)
                n = inputs.count
                keys = sorted(terms)
                local = [float(loss.detach()) * n] + [float(terms[k]) * n for k in keys]
                # summed over processes: all agree on a non-finite loss, and the global mean is logged
                summed = all_reduce_sum(local, info) if info.distributed else local
                if not math.isfinite(summed[0]):
                    bad = summed[0] / n_global
                    break
                share = n * info.world_size / n_global  # this micro-batch's weight in the global mean, × W
                self.scaler.scale(loss if share == 1.0 else loss * share).backward()
                total += summed[0]
                for k, v in zip(keys, summed[1:]):
                    terms_sum[k] = terms_sum.get(k, 0.0) + v
        return total / n_global, {k: v / n_global for k, v in terms_sum.items()}, bad

    def _statistics_loss(self, micro: list):
        """Micro-batches of a loss of summed statistics: exact over processes and micro-batches (module docstring)."""
        objective, info = self.objective, self.info
        prepared = [objective.prepare(part, self.aug_gen) for part in micro]
        if len(prepared) == 1:
            with self.autocast():
                stats = objective.statistics(self.fwd, prepared[0])
            if info.distributed:
                stats = {k: differentiable_all_reduce(v) for k, v in stats.items()}
            loss, terms = objective.loss_from(stats)
            value = float(loss.detach())
            if not math.isfinite(value):
                return value, {}, value
            self.scaler.scale(loss).backward()
            return value, {k: float(v) for k, v in terms.items()}, None
        states, summed = [], None
        with torch.no_grad():
            for inputs in prepared:
                states.append(_rng_state())
                with self.autocast():
                    stats = objective.statistics(self.fwd, inputs)
                summed = stats if summed is None else {k: summed[k] + v for k, v in stats.items()}
        if info.distributed:
            import torch.distributed as dist

            for v in summed.values():
                dist.all_reduce(v)
        leaves = {k: v.detach().requires_grad_(True) for k, v in summed.items()}
        with torch.enable_grad():
            loss, terms = objective.loss_from(leaves)
        value = float(loss.detach())
        if not math.isfinite(value):
            return value, {}, value
        keys = list(leaves)
        grads = dict(zip(keys, torch.autograd.grad(loss, [leaves[k] for k in keys], allow_unused=True)))
        after = _rng_state()
        for i, inputs in enumerate(prepared):
            last = i == len(prepared) - 1
            sync = contextlib.nullcontext() if last or not info.distributed else self.ddp.no_sync()
            with sync:
                _set_rng_state(states[i])
                with self.autocast():
                    stats = objective.statistics(self.fwd, inputs)
                surrogate = sum((stats[k] * g).sum() for k, g in grads.items() if g is not None) * info.world_size
                self.scaler.scale(surrogate).backward()
        _set_rng_state(after)
        return value, {k: float(v) for k, v in terms.items()}, None

    def _end_round(self, start: float, bar) -> None:
        pos, name = self.pos, self.objective.round_name
        self.round, self.last_round = pos["round"] + 1, pos["round"] + 1 == len(self.lengths)
        record = {name: pos["round"] + 1} if name else {}
        record["step"] = pos["step"]
        count = max(1, pos["count"])
        record["train_loss"] = pos["loss_sum"] / count if pos["count"] else None  # every step skipped
        record.update({f"train_{k}": v / count for k, v in sorted(pos["terms"].items())})
        self.ddp.eval()
        record.update(self.objective.evaluate(self.net, self))
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        unit = self.objective.unit
        record[unit] = pos["items"]
        record[f"{unit}_per_second"] = pos["items"] / max(1e-9, pos["train_seconds"])
        record["seconds"] = time.perf_counter() - start
        self.history.append(record)
        self.log.round(record, pos["step"])
        shown = {k: v for k, v in record.items() if k.startswith(("test_", "val_"))}
        if self.info.is_main:
            bar.set_postfix({k: f"{v:.4f}" for k, v in list(shown.items())[:2]})
            if not self.progress and not self.quiet:
                head = f"{name} {record[name]}/{len(self.lengths)}" if name else \
                    f"step {pos['step']}/{self.total}"
                cells = "  ".join(f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} n/a"
                                  for k, v in [("train_loss", record["train_loss"]), *shown.items()])
                print(f"{head}  {cells}  {record['seconds']:.1f} s", flush=True)
        pos.update(round=pos["round"] + 1, batch=0, loss_sum=0.0, count=0, terms={}, in_round=False)

    def _mark(self, status: str) -> None:
        if self.info.is_main and self.out is not None:
            atomic_write_json(self.out / "run.json", {**self.run_info, "status": status})

    def _finish(self, start: float) -> dict:
        pos, model, objective = self.pos, self.model, self.objective
        last = self.history[-1] if self.history else {}
        summary = {
            "model": getattr(model, "name", type(model).__name__),
            "objective": objective.name,
            "task": objective.task,
            "data": objective.data.spec,
            **objective.headline(last),
            "parameters": count_parameters(model),
            "seconds": time.perf_counter() - start,
            "rounds": len(self.lengths),
            "steps": pos["step"],
            "skipped_steps": pos["skipped"],
            "stopped_at_loss": pos["stopped_at_loss"],
            "rounds_done": len(self.history),
            f"{objective.unit}": pos["items"],
            f"{objective.unit}_per_second": pos["items"] / pos["train_seconds"] if pos["train_seconds"] else None,
            "world_size": self.world,
            "device": str(self.device),
            "resumed_from": self.resumed_from,
            "tensorboard": self.log.writer is not None,
            "config": self.c.to_dict(),
            "objective_config": objective.config.to_dict(),
        }
        if objective.round_name == "epoch":
            summary["epochs"] = len(self.lengths)
        if self.info.is_main and self.out is not None:
            save_pretrained(model.cpu(), self.out, extra={**objective.saved_extras(), "objective": objective.name},
                            metrics=objective.headline(last))
            model.to(self.device)
            atomic_write_json(self.out / "summary.json", summary)
            if self.history:
                plot_curves(self.history, self.out / "curves.png", title=f"{summary['model']} ({objective.name}) on "
                                                                          f"{summary['data']}")
            self._mark("finished")
        return summary


def _rng_state() -> tuple:
    return (torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])


def _set_rng_state(state: tuple) -> None:
    torch.set_rng_state(state[0])
    if state[1]:
        torch.cuda.set_rng_state_all(state[1])

