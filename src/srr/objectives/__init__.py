"""Objectives: the plug-ins of the training engine (see :mod:`srr.objectives.base`).

Registered here: ``classification`` (cross-entropy on images), ``mse`` (the square loss on one-hot labels),
``mcr2`` (MCR² on image features), ``lm`` (next-token prediction on text) and ``sparse_coding`` (signals to sparse
codes, LISTA). ``srr train --objective NAME`` picks one; every field of its ``Config`` is a flag.
"""
from . import classification, language, mcr2, mse, sparse_coding  # noqa: F401  (register the objectives)
from .base import Inputs, Objective, ObjectiveConfig, RoundSampler, get_objective, list_objectives, register_objective
from .classification import Classification, ClassificationConfig
from .language import LanguageConfig, LanguageModelling, evaluate_lm
from .mcr2 import FeatureNet, MCR2Config, MCR2Objective
from .sparse_coding import SparseCoding, SparseCodingConfig

__all__ = ["Objective", "ObjectiveConfig", "Inputs", "RoundSampler", "register_objective", "get_objective",
           "list_objectives", "Classification", "ClassificationConfig", "MCR2Objective", "MCR2Config", "FeatureNet",
           "LanguageModelling", "LanguageConfig", "evaluate_lm", "SparseCoding", "SparseCodingConfig"]
