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
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..errors import ConfigError

__all__ = ["DistInfo", "setup_distributed", "cleanup_distributed", "all_reduce_sum", "gather_objects",
           "GlobalBatchSampler", "pick_device"]


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
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
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
    if info.started_here and dist.is_initialized():
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


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields, for one rank, its share of each global batch of one epoch.

    Each epoch draws one permutation of ``range(n)`` from ``generator`` (the same on every rank); global batch ``j``
    is ``perm[j·B : (j+1)·B]`` and rank ``r`` of ``W`` takes its elements ``r, r+W, …`` (as torch's
    ``DistributedSampler`` strides). Unlike ``DistributedSampler`` nothing is padded or duplicated and the global
    batch is the same for any ``W``, so a W-process run reproduces the 1-process run: the loss of rank r is scaled
    by ``W·b_r / b`` to give the exact global mean after DDP's gradient average. A last global batch with fewer than
    ``min_size`` items (``W × accumulate``) is dropped so that every rank has work for every micro-batch.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world_size: int = 1,
                 min_size: int = 1, shuffle: bool = True):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
        self.sizes = [s for s in sizes if s >= min_size]
        self._perm: torch.Tensor | None = None
        self._skip = 0

    def __len__(self) -> int:
        return len(self.sizes) - self._skip

    def begin_epoch(self, skip: int = 0) -> None:
        """Draw this epoch's permutation now (advancing the generator) and start after ``skip`` batches."""
        self._perm = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        self._skip = skip

    def global_size(self, batch: int) -> int:
        return self.sizes[batch]

    def __iter__(self) -> Iterator[list[int]]:
        if self._perm is None:
            self.begin_epoch()
        perm, skip = self._perm, self._skip
        self._perm, self._skip = None, 0
        for j in range(skip, len(self.sizes)):
            start = j * self.batch_size
            yield perm[start:start + self.sizes[j]][self.rank::self.world_size].tolist()
