"""Models assembled from operators, all behind one registry (:func:`create_model`)."""
from . import crate, vit  # noqa: F401  (register their configurations)
from . import aot_gpt, crate_gpt, gpt, tost_gpt  # noqa: F401  (causal language models)
from .crate import CRATE
from .hub import from_pretrained, read_config, save_pretrained
from .vit import ViT
from .aot_gpt import AoTGPT
from .causal_lm import CausalLM
from .crate_gpt import CRATEGPT
from .gpt import GPT
from .tost_gpt import ToSTGPT
from .registry import count_parameters, create_model, get_entry, list_models, register_model

__all__ = ["CRATE", "ViT", "create_model", "list_models", "register_model", "get_entry", "count_parameters",
           "save_pretrained", "from_pretrained", "read_config"]
__all__ += ["CausalLM", "GPT", "CRATEGPT", "AoTGPT", "ToSTGPT"]
