"""What every causal language model of srr shares: token and position embeddings, a final LayerNorm, an output head
tied to the token embedding, input checks, initialisation and sampling.

    x_0 = E[ids] + P[:N]           (E: vocab × d token embedding, P: context × d learned positions)
    x_L = layers(x_0)               (the family's causal layers: token t never sees tokens after t)
    logits = LN(x_L) Eᵀ             (the output head is the embedding matrix itself: ``lm_head.weight is wte.weight``)

Families (one module each) subclass :class:`CausalLM` and build ``self.blocks`` (or override :meth:`encode`).
Initialisation follows each family's authors. Embeddings (token and position) are N(0, 0.02²) in every family.
With ``GPT2_INIT`` (GPT, and ToST whose language code is nanoGPT's) every ``nn.Linear`` is N(0, 0.02²) with zero
bias and the projections that write into the residual stream (``to_out``, ``proj``, ``fc2``) N(0, 0.02²/(2L)).
Without it (CRATE-GPT, AoT: the CRATE code keeps PyTorch's defaults) the operators keep their own init. Measured on
Tiny Shakespeare (nano size, 100 steps of 16 × 128, lr 2e-3; validation bits per byte on 8,192 bytes), the GPT-2
init makes CRATE-GPT collapse to the unigram distribution (4.82, the byte unigram entropy is 4.78) where its own init
reaches 3.73, and slows AoT (4.02 against 3.76); GPT-2 init or not changes ToST by 0.01 (3.67 / 3.68).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from .hub import PretrainedMixin

__all__ = ["CausalLM", "sample_next"]

INIT_STD = 0.02
_RESIDUAL_OUTPUTS = ("to_out.0.weight", "attn.proj.weight", "mlp.fc2.weight")


class CausalLM(PretrainedMixin, nn.Module):
    """Base class: ``wte`` (vocab × d), ``wpe`` (context × d), ``ln_f`` and ``lm_head`` (tied to ``wte``)."""

    GPT2_INIT = True  # re-initialise every Linear as GPT-2 does (see the module docstring)

    def __init__(self, vocab_size: int, context: int, dim: int, depth: int, heads: int, dim_head: int | None = None,
                 emb_dropout: float = 0.0):
        super().__init__()
        dim_head = dim // heads if dim_head is None and heads > 0 else dim_head
        if min(vocab_size, context, dim, depth, heads, dim_head) < 1:
            raise ConfigError(f"sizes must be positive: vocab_size {vocab_size}, context {context}, dim {dim}, "
                              f"depth {depth}, heads {heads}, dim_head {dim_head}")
        self.vocab_size, self.context, self.dim, self.depth, self.heads = vocab_size, context, dim, depth, heads
        self.dim_head = dim_head  # per-head width p; default dim // heads
        self.wte = nn.Embedding(vocab_size, dim)
        self.wpe = nn.Embedding(context, dim)
        self.drop = nn.Dropout(emb_dropout)
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def init_weights(self) -> None:
        """The initialisation of the module docstring; subclasses call it at the end of ``__init__``."""
        nn.init.normal_(self.wte.weight, std=INIT_STD)
        nn.init.normal_(self.wpe.weight, std=INIT_STD)
        if not self.GPT2_INIT:
            return
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=INIT_STD)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        residual_std = INIT_STD / math.sqrt(2 * self.depth)
        for name, p in self.named_parameters():
            if name.endswith(_RESIDUAL_OUTPUTS):
                nn.init.normal_(p, std=residual_std)

    def check_tokens(self, ids: Tensor) -> None:
        if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
            got = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
            raise DataError(f"{type(self).__name__} expects integer token ids of shape (batch, tokens), got {got}")
        if ids.shape[1] > self.context:
            raise DataError(f"{ids.shape[1]} tokens exceed the context of {self.context}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise DataError(f"token ids must lie in [0, {self.vocab_size})")

    def embed(self, ids: Tensor) -> Tensor:
        """Token plus position embeddings: (B, N, d)."""
        self.check_tokens(ids)
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(self.wte(ids) + self.wpe(pos))

    def encode(self, x: Tensor) -> Tensor:
        """The causal layers: by default ``x = block(x)`` for every block of ``self.blocks``."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, ids: Tensor) -> Tensor:
        """Next-token logits (B, N, vocab): position t predicts token t+1 from tokens ≤ t."""
        return self.lm_head(self.ln_f(self.encode(self.embed(ids))))

    @torch.no_grad()
    def generate(self, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``ids`` (B, N); the model sees the last ``context`` tokens.

        ``temperature`` 0 picks the most likely token; ``top_k`` keeps the k most likely before sampling.
        """
        if max_new_tokens < 0:
            raise ConfigError(f"the number of new tokens must be >= 0, got {max_new_tokens}")
        if ids.dim() != 2 or ids.shape[1] == 0:
            raise DataError("generation needs a non-empty prompt of shape (batch, tokens)")
        was_training = self.training
        self.eval()
        for _ in range(max_new_tokens):
            logits = self(ids[:, -self.context:])[:, -1]
            ids = torch.cat((ids, sample_next(logits, temperature, top_k, generator)), dim=1)
        self.train(was_training)
        return ids


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """One token per row of ``logits`` (B, V): argmax if ``temperature == 0``, else a draw from
    ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits. Returns (B, 1) int64."""
    if not temperature >= 0 or math.isinf(temperature):
        raise ConfigError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top-k must be >= 1, got {top_k}")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).to(logits.device)
