"""Objectives: the plug-ins of the training engine (see :mod:`srr.objectives.base`).

Registered here: ``classification`` (cross-entropy on images), ``mse`` (the square loss on one-hot labels),
``mcr2`` (MCR² on image features), ``lm`` (next-token prediction on text), ``sparse_coding`` (signals to sparse
codes, LISTA), and the self-supervised ``dino``, ``simdino`` and ``mcr2_views`` (unsupervised MCR², the views of each
image its group), which ``srr pretrain`` runs. ``srr train --objective NAME`` picks one; every field of its
``Config`` is a flag.
"""
from . import classification, dino, language, mcr2, mcr2_views, mse, simdino, sparse_coding  # noqa: F401 (register)
from .base import Inputs, Objective, ObjectiveConfig, RoundSampler, get_objective, list_objectives, register_objective
from .classification import Classification, ClassificationConfig
from .language import LanguageConfig, LanguageModelling, evaluate_lm
from .mcr2 import FeatureNet, MCR2Config, MCR2Objective
from .sparse_coding import SparseCoding, SparseCodingConfig
from .dino import DINO, DINOConfig
from .mcr2_views import MCR2Views, MCR2ViewsConfig
from .selfsup import SelfSupConfig, SelfSupervised
from .simdino import SimDINO, SimDINOConfig

__all__ = ["Objective", "ObjectiveConfig", "Inputs", "RoundSampler", "register_objective", "get_objective",
           "list_objectives", "Classification", "ClassificationConfig", "MCR2Objective", "MCR2Config", "FeatureNet",
           "LanguageModelling", "LanguageConfig", "evaluate_lm", "SparseCoding", "SparseCodingConfig", "DINO",
           "DINOConfig", "SimDINO", "SimDINOConfig", "MCR2Views", "MCR2ViewsConfig", "SelfSupervised", "SelfSupConfig"]
