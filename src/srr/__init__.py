"""srr: white-box deep networks from the principle of (sparse) rate reduction, and instruments to open any network.

Conventions (stated once, kept everywhere): samples or tokens are rows, ``(…, m, d)``; ``eps`` is the distortion ε,
not ε²; natural logarithms; ``R(Z) = ½ logdet(I + d/(m ε²) ZᵀZ)``. See ``docs/conventions.md``.
"""
from .errors import SrrError
from .measures import (
    coding_rate,
    compressed_rate,
    heads_from_qkv,
    rate_reduction,
    sparse_rate_reduction,
    sparsity,
    subspace_compression,
)
from .models import count_parameters, create_model, from_pretrained, get_config, list_models, save_pretrained
from .redunet import ReduNet  # noqa: F401  (registers the ReduNet family)
from .version import __version__

__all__ = [
    "__version__",
    "SrrError",
    "coding_rate",
    "compressed_rate",
    "rate_reduction",
    "subspace_compression",
    "heads_from_qkv",
    "sparsity",
    "sparse_rate_reduction",
    "create_model",
    "get_config",
    "list_models",
    "count_parameters",
    "save_pretrained",
    "from_pretrained",
]
