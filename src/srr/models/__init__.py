"""Models assembled from operators, all behind one registry (:func:`create_model`)."""
from . import crate, vit  # noqa: F401  (register their configurations)
from . import aot, crate_alpha, crate_variants, tost  # noqa: F401  (the vision family)
from .aot import AoT
from .crate import CRATE
from .crate_alpha import CRATEAlpha
from .hub import from_pretrained, read_config, save_pretrained
from .tost import ToST
from .vit import ViT
from .registry import count_parameters, create_model, get_entry, list_models, register_model

__all__ = ["CRATE", "ViT", "create_model", "list_models", "register_model", "get_entry", "count_parameters",
           "save_pretrained", "from_pretrained", "read_config"]
__all__ += ["CRATEAlpha", "ToST", "AoT"]
