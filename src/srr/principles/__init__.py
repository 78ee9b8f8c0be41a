"""The principles the white-box networks are derived from, runnable and measured (see docs/principles.md).

* :mod:`~srr.principles.mixture` — a mixture of low-rank Gaussians with its exact posterior mean (a softmax over
  subspaces), score and reverse-time sampler; :mod:`~srr.principles.denoising` measures it against the oracle and
  against one MSSA and one attention-only step built from the true subspaces (:func:`denoise_report`,
  ``srr denoise``);
* :mod:`~srr.principles.lasso` — the LASSO by ISTA, FISTA and non-negative ISTA, of which CRATE's ISTA block is one
  step; :mod:`~srr.principles.sparse_coding` measures them against LISTA trained by srr's engine
  (:func:`sparse_coding_report`, ``srr sparse-coding``);
* :mod:`~srr.principles.feature_learning` — a Recursive Feature Machine and the per-layer alignment of a trained
  network's weights with its gradients (the feature ansatz, G ∝ I, G ∝ W Wᵀ, the left singular vectors).

It sits above :mod:`srr.training` (the sparse-coding pipeline trains LISTA with the engine).
"""
from .denoising import DenoiseSettings, denoise_report, mse_curves, network_denoisers
from .feature_learning import RFM, kernel_agop, laplace_kernel, layer_alignment, rfm, whitened_frame
from .lasso import crate_block_as_step, fista, ista, lasso_objective, lipschitz, nonnegative_ista
from .mixture import (LowRankMixture, log_density, low_rank_mixture, nearest_subspace, oracle_mean, posterior_mean,
                      posterior_weights, reverse_sample, score)
from .sparse_coding import SparseCodingSettings, sparse_coding_report, train_lista

__all__ = ["LowRankMixture", "low_rank_mixture", "log_density", "posterior_weights", "posterior_mean", "score",
           "oracle_mean", "nearest_subspace", "reverse_sample", "DenoiseSettings", "denoise_report", "mse_curves",
           "network_denoisers", "lasso_objective", "lipschitz", "ista", "fista", "nonnegative_ista",
           "crate_block_as_step", "SparseCodingSettings", "sparse_coding_report", "train_lista", "RFM", "rfm",
           "laplace_kernel", "kernel_agop", "whitened_frame", "layer_alignment"]
