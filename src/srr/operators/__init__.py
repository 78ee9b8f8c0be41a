"""Operators: the blocks white-box networks are assembled from, each the step of an objective it names."""
from .attention import MultiHeadSelfAttention
from .causal_tssa import CausalTSSA
from .ista import ISTA
from .mlp import MLP
from .mssa import MSSA
from .odl import ODL
from .patch_embed import PatchEmbedding, Patchify, check_image_config, pair
from .prenorm import PreNorm
from .tssa import TSSA

__all__ = ["MSSA", "ISTA", "ODL", "TSSA", "CausalTSSA", "MultiHeadSelfAttention", "MLP", "PreNorm", "PatchEmbedding",
           "Patchify", "check_image_config", "pair"]
