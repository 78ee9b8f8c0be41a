"""Measures of rate reduction: coding rates, compression against subspaces, sparsity (see docs/measures.md)."""
from .logdet import logdet_i_plus
from .rates import coding_rate, compressed_rate, memberships, rate_reduction
from .subspace import heads_from_qkv, sparse_rate_reduction, sparsity, subspace_compression

__all__ = [
    "coding_rate",
    "compressed_rate",
    "rate_reduction",
    "memberships",
    "subspace_compression",
    "heads_from_qkv",
    "sparsity",
    "sparse_rate_reduction",
    "logdet_i_plus",
]
