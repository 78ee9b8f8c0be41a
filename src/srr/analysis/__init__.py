"""Analysis: instruments that measure what each layer of a network does."""
from .classifiers import accuracy, knn, nearest_subspace
from .layers import compare_layers, layer_statistics, plot_layers
from .similarity import class_cosines, cosine_matrix

__all__ = ["layer_statistics", "compare_layers", "plot_layers", "nearest_subspace", "knn", "accuracy",
           "class_cosines", "cosine_matrix"]
