"""Data: the ``--data`` sources (embedded digits, IDX folders, synthetic subspace mixtures) as in-memory tensors."""
from . import cifar, digits, folder, idx, npz, synthetic, text  # noqa: F401  (register the sources)
from .dataset import LabelledData, list_sources, load_data, register_source, seeded_split
from .idx import read_idx
from .images import ArrayImages, StreamedData, TensorImages
from .noise import corrupt_labels
from .synthetic import mixture_of_subspaces, token_sets
from .text import ByteTokenizer, TextData, load_text

__all__ = ["LabelledData", "load_data", "list_sources", "register_source", "seeded_split", "read_idx",
           "mixture_of_subspaces", "token_sets", "corrupt_labels", "StreamedData", "ArrayImages", "TensorImages",
           "ByteTokenizer", "TextData", "load_text"]
