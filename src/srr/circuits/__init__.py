"""Circuits: the mechanistic view of a transformer (docs/circuits.md).

Per head the matrices W_QK and W_OV and their symmetry and spectra (:mod:`.weights`); for a language model the
circuits on tokens and the direct path (:mod:`.tokens`); how heads compose across layers (:mod:`.composition`);
attention-pattern scores on repeated random tokens (:mod:`.patterns`); the logit lens (:mod:`.lens`); recording,
patching and ablating activations (:mod:`.patching`); attention-only models for induction studies (:mod:`.toy`); the
report that ``srr circuits`` writes (:mod:`.pipeline`).
"""
from .composition import composition_score, composition_scores, random_baseline
from .lens import lens_logits, logit_lens
from .patching import (ablate_heads, head_ablation_table, hook_names, model_loss, patch, record, replace_head)
from .patterns import (attention_patterns, chance_levels, icl_score, pattern_scores, position_losses,
                       repeated_tokens)
from .tokens import direct_path, embedding_matrices, ov_circuit, qk_circuit, token_circuits, top_pairs
from .toy import AttentionOnlyGPT
from .weights import HeadWeights, head_weights, is_symmetric_psd, spectrum, symmetry_score

__all__ = ["HeadWeights", "head_weights", "symmetry_score", "spectrum", "is_symmetric_psd", "composition_score",
           "composition_scores", "random_baseline", "embedding_matrices", "top_pairs", "qk_circuit", "ov_circuit",
           "direct_path", "token_circuits", "repeated_tokens", "pattern_scores", "chance_levels", "position_losses",
           "icl_score", "attention_patterns", "lens_logits", "logit_lens", "hook_names", "record", "patch",
           "ablate_heads", "replace_head", "head_ablation_table", "model_loss", "AttentionOnlyGPT"]
