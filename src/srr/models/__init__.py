"""Models: one protocol (:mod:`srr.models.base`), one configuration dataclass per family, one registry.

Each family is one module: its block, its configuration, its registry functions. Importing this package registers
them all.
"""
from . import aot, crate, crate_alpha, lista, mlp, tost, tost_official, vit  # noqa: F401  (register their configurations)
from .aot import AoT, AoTGPT
from .base import (Block, CausalTransformer, HookPoint, ImageTransformer, SequentialBlock, TransformerModel,
                   sample_next)
from .config import BlockConfig, ImageConfig, ModelConfig, TextConfig
from .crate import CRATE, CRATEGPT
from .crate_alpha import CRATEAlpha
from .hub import from_pretrained, load_weights, read_config, save_pretrained
from .lista import LISTA
from .mlp import ReLUMLP
from .registry import (count_parameters, create_model, get_config, get_entry, list_models, parameter_count,
                       register_model)
from .tost import ToST, ToSTGPT
from .tost_official import ToSTOfficial
from .vit import GPT, ViT

__all__ = ["CRATE", "ViT", "CRATEAlpha", "ToST", "AoT", "CausalTransformer", "ImageTransformer",
           "TransformerModel", "Block", "SequentialBlock", "HookPoint", "GPT", "CRATEGPT", "AoTGPT", "ToSTGPT",
           "ToSTOfficial", "ReLUMLP", "LISTA", "ModelConfig",
           "BlockConfig", "ImageConfig", "TextConfig", "create_model", "get_config", "list_models", "register_model",
           "get_entry", "count_parameters", "parameter_count", "save_pretrained", "from_pretrained", "read_config",
           "load_weights", "sample_next"]
