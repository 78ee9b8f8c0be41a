"""Models assembled from operators, all behind one registry (:func:`create_model`)."""
from . import crate, mlp, vit  # noqa: F401  (register their configurations)
from .crate import CRATE
from .hub import from_pretrained, read_config, save_pretrained
from .mlp import ReLUMLP
from .vit import ViT
from .registry import count_parameters, create_model, get_entry, list_models, register_model

__all__ = ["CRATE", "ViT", "ReLUMLP", "create_model", "list_models", "register_model", "get_entry", "count_parameters",
           "save_pretrained", "from_pretrained", "read_config"]
