"""Analysis: instruments that measure what each layer of a network does."""
from .ansatz import feature_ansatz, gradient_moments, tight_frame_statistics
from .attention import cls_attention
from .complexity import granulated_tau, kendall_tau, srr_measure, srr_penalty
from .denoising import denoising_curves, snr
from .layers import compare_layers, layer_statistics, plot_layers

__all__ = ["layer_statistics", "compare_layers", "plot_layers", "cls_attention", "feature_ansatz", "gradient_moments",
           "tight_frame_statistics", "srr_measure", "srr_penalty", "kendall_tau", "granulated_tau", "denoising_curves",
           "snr"]
