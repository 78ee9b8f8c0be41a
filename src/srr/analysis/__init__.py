"""Analysis: instruments that measure what each layer of a network does."""
from .layers import compare_layers, layer_statistics, plot_layers

__all__ = ["layer_statistics", "compare_layers", "plot_layers"]
