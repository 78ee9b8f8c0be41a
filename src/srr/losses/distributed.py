"""A differentiable all-reduce (sum) for losses that are exact under data parallelism.

Forward: every process receives ``Σ_r x_r``. Backward: the incoming gradients are summed over processes too (the
convention of ``torch.distributed.nn.all_reduce``). When every process computes the same loss L from the reduced
value, each then holds W·∂L/∂x_r (W processes); after DistributedDataParallel averages the parameter gradients over
the W processes, every parameter has exactly the gradient of L on the global batch.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["distributed_world", "all_reduce_sum", "all_reduce_max"]


def distributed_world(group=None) -> int:
    """The number of processes in ``group`` if ``torch.distributed`` is initialised, else 1."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        import torch.distributed as dist

        ctx.group = group
        out = x.clone().contiguous()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        import torch.distributed as dist

        grad = grad.clone().contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def all_reduce_sum(x: Tensor, group=None) -> Tensor:
    """``Σ_r x_r`` over the processes of ``group``, differentiable (see the module docstring); ``x`` if alone."""
    if distributed_world(group) == 1:
        return x
    return _AllReduceSum.apply(x, group)


def all_reduce_max(value: int, device, group=None) -> int:
    """The largest ``value`` over the processes of ``group`` (an integer, no gradient)."""
    if distributed_world(group) == 1:
        return int(value)
    import torch.distributed as dist

    t = torch.tensor([int(value)], dtype=torch.long, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return int(t)
