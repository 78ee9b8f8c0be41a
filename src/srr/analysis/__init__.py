"""Analysis: instruments that measure what each layer of a network does."""
from .ansatz import feature_ansatz, gradient_moments, tight_frame_statistics
from .attention import cls_attention
from .classifiers import accuracy, knn, nearest_subspace
from .complexity import granulated_tau, kendall_tau, srr_measure, srr_penalty
from .denoising import denoising_curves, snr
from .layers import compare_layers, layer_statistics, plot_layers
from .similarity import class_cosines, cosine_matrix

__all__ = ["layer_statistics", "compare_layers", "plot_layers", "nearest_subspace", "knn", "accuracy",
           "class_cosines", "cosine_matrix", "cls_attention", "feature_ansatz", "gradient_moments",
           "tight_frame_statistics", "srr_measure", "srr_penalty", "kendall_tau", "granulated_tau", "denoising_curves",
           "snr"]
