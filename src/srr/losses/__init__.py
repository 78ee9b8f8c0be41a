"""Losses derived from rate reduction: MCR² (see docs/measures.md)."""
from .distributed import all_reduce_sum, distributed_world
from .mcr2 import MCR2

__all__ = ["MCR2", "all_reduce_sum", "distributed_world"]
