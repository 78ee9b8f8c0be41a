"""Models assembled from operators, all behind one registry (:func:`create_model`)."""
from . import crate, mlp, vit  # noqa: F401  (register their configurations)
from . import aot, crate_alpha, crate_variants, tost  # noqa: F401  (the vision family)
from . import aot_gpt, crate_gpt, gpt, tost_gpt  # noqa: F401  (causal language models)
from .aot import AoT
from .aot_gpt import AoTGPT
from .causal_lm import CausalLM
from .crate import CRATE
from .crate_alpha import CRATEAlpha
from .crate_gpt import CRATEGPT
from .gpt import GPT
from .hub import from_pretrained, read_config, save_pretrained
from .mlp import ReLUMLP
from .registry import count_parameters, create_model, get_entry, list_models, register_model
from .tost import ToST
from .tost_gpt import ToSTGPT
from .vit import ViT

__all__ = ["CRATE", "ViT", "CRATEAlpha", "ToST", "AoT", "CausalLM", "GPT", "CRATEGPT", "AoTGPT", "ToSTGPT", "ReLUMLP",
           "create_model", "list_models", "register_model", "get_entry", "count_parameters", "save_pretrained",
           "from_pretrained", "read_config"]
