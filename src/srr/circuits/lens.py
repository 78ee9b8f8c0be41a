"""The logit lens: what the residual stream would predict if the network stopped after each layer.

After every block ℓ the tokens z_ℓ go through the model's own head (``forward_head``): for a language model the final
LayerNorm and the unembedding, ``logits_ℓ = LN_f(z_ℓ) W_Uᵀ``; for an image classifier the pooling, the head's
LayerNorm and the classifier. At the last block this is the model's output exactly. Per layer the lens reports the
accuracy of the top prediction against the targets (the next tokens, or the labels; without labels, agreement with
the final prediction) and the mean KL divergence KL(p_final ‖ p_ℓ) (nats) from the final distribution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, NonFiniteError

__all__ = ["lens_logits", "logit_lens"]


@torch.no_grad()
def lens_logits(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Per block the logits of the model's head applied to the residual stream after that block."""
    if not hasattr(model, "trace") or not hasattr(model, "forward_head"):
        raise ConfigError(f"{type(model).__name__} has no blocks and head to read a logit lens through")
    return [model.forward_head(record["output"]) for record in model.trace(x)]


@torch.no_grad()
def logit_lens(model: nn.Module, x: Tensor, targets: Tensor | None = None) -> list[dict]:
    """Per layer ``{"layer", "accuracy", "kl_to_final"}``. For a language model ``x`` are token ids (B, N) and the
    targets default to the next tokens (the last position is dropped); for a classifier ``targets`` are the labels
    (B,), or ``None`` to score agreement with the final prediction."""
    layers = lens_logits(model, x)
    lm = layers[-1].dim() == 3
    if lm:
        layers = [z[:, :-1] for z in layers]
        targets = x[:, 1:] if targets is None else targets
    final = layers[-1].double().reshape(-1, layers[-1].shape[-1])
    if not bool(torch.isfinite(final).all()):
        raise NonFiniteError("the model's logits are not finite: its weights are broken")
    goal = final.argmax(-1) if targets is None else targets.reshape(-1)
    log_final = F.log_softmax(final, dim=-1)
    rows = []
    for layer, z in enumerate(layers):
        z = z.double().reshape(-1, z.shape[-1])
        log_p = F.log_softmax(z, dim=-1)
        kl = (log_final.exp() * (log_final - log_p)).sum(-1).mean()
        rows.append({"layer": layer, "accuracy": float((z.argmax(-1) == goal).double().mean()),
                     "kl_to_final": max(float(kl), 0.0)})
    return rows
