"""The circuits report of one model (``srr circuits``): every instrument of :mod:`srr.circuits`, JSON and figures.

``circuits.json`` holds, per head, the kind of attention, ‖W_QK‖ and ‖W_OV‖, the symmetry score of W_QK, whether it
is symmetric positive semi-definite, and the p eigenvalues of W_QK and W_OV that can be non-zero; the Q-, K- and
V-composition of every head pair with a random baseline of the same shapes; the logit lens per layer and the
head-ablation table (loss change per head, zero ablation). A language model adds its circuits on tokens (top pairs
of every head's QK and OV circuits, the direct path and its bigram asymmetry) and, on a probe of random token
sequences repeated twice, the previous-token, induction and duplicate-token scores per head (for operators that form
an attention pattern) with their chance levels, and the in-context-learning score. The lens and the ablation table
run on held-out data when there is some (test images with their labels, validation windows of text), else on the
probe. Figures: ``qk.png`` and ``ov.png`` (per head, at most 8 layers × 8 heads), ``composition.png``,
``scores.png`` (language models with attention patterns), ``logit_lens.png``.
"""
from __future__ import annotations

import torch

from ..checks import check_int
from ..errors import ConfigError
from .composition import composition_scores, random_baseline
from .lens import logit_lens
from .patching import head_ablation_table
from .patterns import attention_patterns, chance_levels, icl_score, pattern_scores, position_losses, repeated_tokens
from .plots import plot_composition, plot_head_matrices, plot_logit_lens, plot_pattern_scores
from .tokens import token_circuits
from .weights import head_weights, is_symmetric_psd, low_rank_spectrum, symmetry_score

__all__ = ["head_summary", "circuits_report", "MAX_PLOTTED"]

MAX_PLOTTED = 8
SPECTRUM = 8


def _values(values: torch.Tensor) -> list[list[float]]:
    return [[float(v.real), float(v.imag)] for v in values[:SPECTRUM]]


def head_summary(heads) -> list[dict]:
    """Per head: kind, norms, symmetry score and PSD test of W_QK, leading eigenvalues ([real, imaginary]) of W_QK
    and W_OV."""
    rows = []
    for layer in heads:
        for h in layer:
            qk = h.qk
            rows.append({
                "layer": h.layer, "head": h.head, "kind": h.kind,
                "qk_norm": None if qk is None else float(torch.linalg.matrix_norm(qk)),
                "ov_norm": float(torch.linalg.matrix_norm(h.ov)),
                "qk_symmetry": None if qk is None else symmetry_score(qk),
                "qk_symmetric_psd": None if qk is None else is_symmetric_psd(qk),
                "qk_eigenvalues": None if qk is None else _values(low_rank_spectrum(*h.qk_factors)),
                "ov_eigenvalues": _values(low_rank_spectrum(*h.ov_factors)),
            })
    return rows


def _held_out(src, data, samples: int):
    """(inputs, targets) of held-out data, or None."""
    if data is None:
        return None
    from ..analysis.runs import sample_inputs

    x = sample_inputs(src, data, samples)
    if src.task == "lm":
        return x, None
    labels = data.test_set.__getitems__(list(range(min(samples, len(data.test_set)))))[1]
    return x, torch.as_tensor(labels).long()


@torch.no_grad()
def circuits_report(src, data, out, *, samples: int = 32, length: int | None = None, top: int = 10,
                    seed: int = 0) -> dict:
    """Write ``circuits.json`` and the figures for the model of ``src`` into the folder ``out`` (published whole);
    ``data`` may be ``None`` for a language model (the probe then serves the lens and the ablation table). ``length``
    is the probe's sequence length T (default min(32, context // 2)); ``samples`` the number of held-out inputs and
    of probe sequences. Returns the report."""
    from ..io import atomic_write_json
    from ..runfolder import publish_folder

    check_int(samples, "--samples", low=1, high=1 << 16)
    check_int(top, "--top", low=1, high=1000)
    model = src.model.eval()
    heads = head_weights(model)
    first = heads[0][0]
    d, p = first.W_V.shape[1], first.W_V.shape[0]
    title = f"{src.name} ({src.label})"
    report = {"title": title, "model": src.name, "dim": d, "head_width": p, "layers": len(heads),
              "heads_per_layer": len(heads[0]), "layernorm_folded": True,
              "heads": head_summary(heads), "composition": composition_scores(heads),
              "composition_random_baseline": random_baseline(d, p, samples=20, seed=seed)}
    probe = None
    if src.task != "lm" and length is not None:
        raise ConfigError(f"--length sets the repeated-token probe of a language model; {src.name} reads images")
    if src.task == "lm":
        context = int(model.context)
        if context < 4:
            raise ConfigError(f"a context of {context} tokens holds no repeated probe (it needs at least 4)")
        length = min(32, context // 2) if length is None else check_int(length, "--length", low=2, high=context // 2)
        probe = repeated_tokens(model.vocab_size, length, batch=samples, seed=seed)
        report["tokens"] = token_circuits(model, heads, top)
        report["probe"] = {"length": length, "sequences": samples, "seed": seed,
                           "what": "uniform random tokens, repeated twice"}
        if all(hasattr(block.attention, "attention") for block in model.block_list):
            report["pattern_scores"] = pattern_scores(attention_patterns(model, probe), length)
            report["pattern_chance"] = chance_levels(length)
        report["in_context_learning"] = icl_score(position_losses(model, probe), length)
    held = _held_out(src, data, samples)
    x, targets = held if held is not None else (probe, None)
    report["lens_data"] = getattr(data, "spec", None) if held is not None else "probe"
    report["logit_lens"] = logit_lens(model, x, targets)
    if targets is not None or src.task == "lm":
        report["head_ablation"] = head_ablation_table(model, x, targets)
    plotted = [layer[:MAX_PLOTTED] for layer in heads[:MAX_PLOTTED]]
    with publish_folder(out) as tmp:
        plot_head_matrices(plotted, tmp / "qk.png", "qk", f"W_QK per head: {title}")
        plot_head_matrices(plotted, tmp / "ov.png", "ov", f"W_OV per head: {title}")
        if report["composition"]:
            plot_composition(report["composition"], report["composition_random_baseline"], tmp / "composition.png",
                             title)
        if "pattern_scores" in report:
            plot_pattern_scores(report["pattern_scores"], report["pattern_chance"], tmp / "scores.png",
                                f"{title}: scores on repeated random tokens (T = {length})")
        plot_logit_lens(report["logit_lens"], tmp / "logit_lens.png", f"logit lens: {title} on {report['lens_data']}")
        atomic_write_json(tmp / "circuits.json", report)
    return report
