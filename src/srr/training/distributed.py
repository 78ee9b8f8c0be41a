"""Data parallelism on PyTorch's own engine: ``torch.distributed`` process groups started by ``torchrun``, and the
sampler that splits every global batch between the ranks.

``srr train`` run under ``torchrun --nproc_per_node N`` (which sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``/``MASTER_PORT``) joins a process group: NCCL when the run is on CUDA (one GPU per local rank), gloo
on the CPU. Gradients are averaged by ``DistributedDataParallel``; metrics are summed across ranks with
``all_reduce``; only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
import torch
import torch.distributed as dist

from ..errors import ConfigError

__all__ = ["DistInfo", "setup_distributed", "cleanup_distributed", "all_reduce_sum", "gather_objects",
           "pick_device"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    started_here: bool = False  # this call created the process group (and cleanup destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str | None = None) -> torch.device:
    """``name`` if given (checked: see :func:`srr.device.pick_device`), else CUDA when available, else CPU."""
    from ..device import pick_device as checked

    return checked(name)


def setup_distributed(device: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (or run alone without one)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not dist.is_initialized():
        return DistInfo(device=pick_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = pick_device(device)
    if want.type == "cuda":
        if torch.cuda.device_count() <= local_rank:
            raise ConfigError(f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible)")
        want = torch.device("cuda", local_rank)
        torch.cuda.set_device(want)
    started = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if want.type == "cuda" else "gloo")
        started = True
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, want, started)


def cleanup_distributed(info: DistInfo) -> None:
    """Leave the process group this run started: every process waits at a barrier (process 0 may still be writing
    the final files), then the group is destroyed."""
    if info.started_here and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a few numbers over all ranks (float64); the identity when running alone."""
    if not info.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj`` (plain tensors, numbers, lists, dicts), on every rank."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
