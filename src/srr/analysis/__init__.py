"""Analysis: instruments that measure what each layer of a network does, and the pipelines that write their reports.

Every pipeline is a function a Python user can call; the ``srr`` sub-commands only parse arguments, call it and
print: :func:`analyze` (layer by layer), :func:`attention_report`, :func:`ansatz_report`, :func:`build_report`
(the HTML page of any run), :func:`evaluate`, :func:`predict`, :func:`compare_runs`,
:func:`synthetic_report` (denoising on synthetic subspace data) and
:func:`run_experiment` (a ReduNet built and measured). :func:`open_source` opens a run folder or a registry name.
"""
from .ansatz import ansatz_report, feature_ansatz, gradient_moments, tight_frame_statistics
from .attention import attention_report, cls_attention, token_attention
from .classifiers import accuracy, knn, nearest_subspace
from .compare import compare_runs, read_run
from .complexity import granulated_tau, kendall_tau, srr_measure, srr_penalty
from .curves import plot_curves
from .denoising import denoising_curves, snr, synthetic_report
from .evaluate import evaluate, load_images, predict
from .layers import analyze, compare_layers, layer_statistics, plot_layers
from .redunet import run_experiment
from .report import build_report
from .runs import Source, open_source, source_data
from .similarity import class_cosines, cosine_matrix

__all__ = ["layer_statistics", "compare_layers", "plot_layers", "analyze", "nearest_subspace", "knn", "accuracy",
           "class_cosines", "cosine_matrix", "cls_attention", "token_attention", "attention_report", "feature_ansatz",
           "gradient_moments", "tight_frame_statistics", "ansatz_report", "srr_measure", "srr_penalty", "kendall_tau",
           "granulated_tau", "denoising_curves", "snr", "synthetic_report", "run_experiment", "build_report",
           "plot_curves", "open_source", "source_data", "Source", "evaluate", "predict", "load_images",
           "compare_runs", "read_run"]
