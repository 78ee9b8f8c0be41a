"""Data: the ``--data`` sources (embedded digits, IDX, CIFAR, image folders, npz, synthetic mixtures, sparse codes,
text).

Every image source returns an :class:`ImageData`; text sources return :class:`TextData`; ``sparse:`` returns
:class:`SparseCodes` (signals with their sparse codes).
"""
from . import cifar, digits, folder, idx, npz, scenes, sparse, synthetic, text  # noqa: F401  (register the sources)
from .idx import read_idx
from .image_data import ImageData
from .images import ArrayImages, TensorImages
from .noise import corrupt_labels
from .sources import list_sources, load_data, parse_spec, register_source
from .spec import DataSpec, Option
from .sparse import SparseCodes, sparse_codes
from .splits import seeded_split
from .synthetic import mixture_of_subspaces, token_sets
from .text import ByteTokenizer, TextData, load_text

__all__ = ["ImageData", "load_data", "list_sources", "register_source", "parse_spec", "DataSpec", "Option",
           "seeded_split", "read_idx", "mixture_of_subspaces", "token_sets", "corrupt_labels", "ArrayImages",
           "TensorImages", "ByteTokenizer", "TextData", "load_text", "SparseCodes", "sparse_codes"]
