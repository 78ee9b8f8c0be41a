"""The model protocol: a family writes one block; the base classes own the blocks and everything around them.

Every transformer family of srr is a :class:`Block` (its layer) plus a configuration dataclass. A block runs

    x    = hook_input(x)
    a_in = hook_attn_input(attention_norm(x))           the attention's input (after the pre-norm)
    a    = hook_attn_output(attention_scale(attention(a_in)))   what the attention writes into the residual stream
    mid  = hook_mid(x + a)                               the residual stream after the attention step
    out  = hook_output(update(mid))                      the family's second step (ISTA, ODL, an MLP, nothing)

so a family defines ``attention_norm``, ``attention``, optionally ``attention_scale`` and ``update``, and nothing
else. The ``hook_*`` members are identity modules (named hook points, as TransformerLens names its activations): a
forward hook on one of them records or replaces that activation; they hold no parameters, so state dicts keep the
authors' key names.

:class:`TransformerModel` owns the blocks (a ``ModuleList`` at ``BLOCKS``: ``"blocks"`` or the authors'
``"transformer.layers"``) and implements once, for every family:

* ``forward_features(x)`` (tokens after the last block), ``forward_head(z)``, ``forward(x)``;
* ``trace(x)``: per block a dict with the same keys for every family — ``input``, ``attn_input``, ``attn_output``,
  ``mid``, ``output`` — plus the family's extras (CRATE-α's sparse ``codes``, ToST's ``memberships``);
* ``subspaces()``: per block the bases U (K, d, p) of a tied attention projection (MSSA, TSSA), or ``None`` for a
  family whose queries, keys and values are separate (ViT, GPT; see ``head_bases``);
* ``attention_maps(x)``: per block the softmax attention (B, K, N, N) of operators that form one.

Two front ends subclass it: :class:`ImageTransformer` (patches, CLS token, learned positions, a pooled head; the
authors' key names ``to_patch_embedding``, ``pos_embedding``, ``cls_token``, ``mlp_head``) and
:class:`CausalTransformer` (``wte``, ``wpe``, ``ln_f`` and ``lm_head`` tied to ``wte``).
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from ..operators import PatchEmbedding
from ..operators.hooks import HookPoint
from .config import ModelConfig, pair
from .hub import PretrainedMixin

__all__ = ["HookPoint", "Block", "SequentialBlock", "TransformerModel", "ImageTransformer", "CausalTransformer", "HOOKS",
           "sample_next", "INIT_STD"]

HOOKS = ("input", "attn_input", "attn_output", "mid", "output")
INIT_STD = 0.02
_RESIDUAL_OUTPUTS = ("to_out.0.weight", "attn.proj.weight", "mlp.fc2.weight")


class Block(nn.Module):
    """One layer of a family: see the module docstring. Subclasses build their modules in ``__init__`` (after
    calling ``super().__init__()``) and define :meth:`attention_norm`, :meth:`attention` and :meth:`update`."""

    def __init__(self):
        super().__init__()
        for name in HOOKS:
            self.add_module(f"hook_{name}", HookPoint())

    # -- what a family defines --------------------------------------------------------------------------------
    @property
    def attention_norm(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def attention(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def attention_scale(self, a: Tensor) -> Tensor:
        """LayerScale of the attention output (identity unless the family has one)."""
        return a

    def update(self, mid: Tensor) -> Tensor:
        """The family's second step, from the residual stream after the attention step."""
        return mid

    def trace_extras(self, record: dict) -> dict:
        """Family-specific activations computed from a traced record (default none)."""
        return {}

    # -- shared -------------------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        x = self.hook_input(x)
        a = self.hook_attn_output(self.attention_scale(self.attention(self.hook_attn_input(self.attention_norm(x)))))
        mid = self.hook_mid(x + a)
        return self.hook_output(self.update(mid))


class SequentialBlock(Block):
    """A block whose steps are numbered children (``0``, ``1``, … — the authors' ``layers[i][j]``), which it also
    offers by index and in order: ``attn, ista = model.transformer.layers[0]``."""

    def __getitem__(self, i: int) -> nn.Module:
        return self._modules[str(i)]

    def __len__(self) -> int:
        return sum(1 for name in self._modules if name.isdigit())

    def __iter__(self):
        return iter(self[i] for i in range(len(self)))


class TransformerModel(PretrainedMixin, nn.Module):
    """Blocks of one family behind a front end; see the module docstring. ``Block`` and ``Config`` are set by each
    model class; ``BLOCKS`` is the attribute path of the block list."""

    Block: ClassVar[type[Block]]
    Config: ClassVar[type[ModelConfig]]
    BLOCKS: ClassVar[str] = "blocks"
    causal: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "Config" in cls.__dict__:  # the configuration dataclass builds this class
            cls.Config.model_cls = cls

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, self.Config):
            raise ConfigError(f"{type(self).__name__} takes a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self.dim, self.depth, self.heads = config.dim, config.depth, config.heads
        self.dim_head = config.head_width
        self.build_front(config)
        blocks = nn.ModuleList(self.Block(config, causal=self.causal, context=getattr(config, "context", None))
                               for _ in range(config.depth))
        owner, _, attr = self.BLOCKS.rpartition(".")
        if owner:
            setattr(self, owner, _Container())
            setattr(getattr(self, owner), attr, blocks)
        else:
            setattr(self, attr, blocks)
        eps = getattr(config, "norm_eps", None)
        if eps is not None:
            for module in self.modules():
                if isinstance(module, nn.LayerNorm):
                    module.eps = float(eps)
        self.after_init()

    @classmethod
    def from_config(cls, config: ModelConfig) -> "TransformerModel":
        return cls(config)

    def build_front(self, config) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def after_init(self) -> None:
        """Called once the blocks exist (initialisation schemes that span the whole model)."""

    @property
    def block_list(self) -> nn.ModuleList:
        module = self
        for part in self.BLOCKS.split("."):
            module = getattr(module, part)
        return module

    # -- forward ------------------------------------------------------------------------------------------------
    def embed(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, z: Tensor) -> Tensor:
        for block in self.block_list:
            z = block(z)
        return z

    def forward_features(self, x: Tensor) -> Tensor:
        """Tokens after the last block: (B, N, d)."""
        return self.encode(self.embed(x))

    def forward_head(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    # -- instruments --------------------------------------------------------------------------------------------
    def trace(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per block the activations ``input``, ``attn_input``, ``attn_output``, ``mid``, ``output`` (and the
        family's extras) of one forward pass over ``x``."""
        records: list[dict[str, Tensor]] = [{} for _ in self.block_list]
        handles = []
        for record, block in zip(records, self.block_list):
            for name in HOOKS:
                def keep(_module, _inputs, output, record=record, name=name):
                    record[name] = output
                handles.append(getattr(block, f"hook_{name}").register_forward_hook(keep))
        try:
            self.forward_features(x)
        finally:
            for h in handles:
                h.remove()
        for record, block in zip(records, self.block_list):
            record.update(block.trace_extras(record))
        return records

    def subspaces(self) -> list[Tensor] | None:
        """Per block the bases U (K, d, p) of its tied attention projection (rows of head k of ``qkv.weight`` are
        U_kᵀ), or ``None`` when the attention has separate query, key and value projections."""
        bases = [getattr(block.attention, "subspaces", lambda: None)() for block in self.block_list]
        return None if any(u is None for u in bases) else bases

    def head_bases(self, which: str = "value") -> list[Tensor]:
        """Per block an orthonormal basis (K, d, p) of every head's ``which`` projection ("query", "key" or
        "value"; for a tied projection all three are U_[K], orthonormalised)."""
        return [block.attention.head_bases(which) for block in self.block_list]

    def attention_maps(self, x: Tensor) -> list[Tensor]:
        """Per block the softmax attention (B, K, N, N) of every head."""
        if not all(hasattr(block.attention, "attention") for block in self.block_list):
            kind = type(self.block_list[0].attention).__name__
            raise ConfigError(f"{type(self).__name__}'s attention ({kind}) forms no token-by-token matrix")
        return [block.attention.attention(rec["attn_input"]) for block, rec in zip(self.block_list, self.trace(x))]


class _Container(nn.Module):
    """A module holding the block list under the authors' name ``transformer.layers``."""


class ImageTransformer(TransformerModel):
    """Image front end: ``to_patch_embedding`` (patchify, LN, Linear, LN), ``pos_embedding`` (1, N+1, d) and
    ``cls_token`` (1, 1, d) drawn from N(0, 1), and ``mlp_head`` (LN, Linear) on the CLS token or the token mean."""

    def build_front(self, config) -> None:
        self.image_hw, self.patch_hw = pair(config.image_size), pair(config.patch_size)
        self.channels, self.pool, self.num_classes = config.channels, config.pool, config.num_classes
        self.to_patch_embedding = PatchEmbedding(self.patch_hw, config.channels, config.dim)
        if not getattr(config, "patch_norm", True):  # the Linear alone (a strided convolution); keys keep their index
            self.to_patch_embedding[1], self.to_patch_embedding[3] = nn.Identity(), nn.Identity()
        self.pos_embedding = nn.Parameter(torch.randn(1, config.num_patches + 1, config.dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, config.dim))
        self.dropout = nn.Dropout(config.emb_dropout)
        self.mlp_head = nn.Sequential(nn.LayerNorm(config.dim), nn.Linear(config.dim, config.num_classes))

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, columns) of the training image size."""
        return self.image_hw[0] // self.patch_hw[0], self.image_hw[1] // self.patch_hw[1]

    def check_input(self, x: Tensor) -> tuple[int, int]:
        """Check the channels and that the image is a whole number of patches; returns the patch grid. Any such size
        works: positions are interpolated for another grid (:meth:`position_embedding`)."""
        ph, pw = self.patch_hw
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.channels or x.shape[2] % ph \
                or x.shape[3] % pw or x.shape[2] < ph or x.shape[3] < pw:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"{type(self).__name__} expects images of shape (batch, {self.channels}, "
                            f"{self.image_hw[0]}, {self.image_hw[1]}), got {got} (other sizes divisible by the patch "
                            f"{ph}x{pw} work too)")
        return x.shape[2] // ph, x.shape[3] // pw

    def position_embedding(self, grid: tuple[int, int]) -> Tensor:
        """Positions (1, 1 + gh·gw, d) for a patch grid: the learned ones at the training grid, else their patch
        part resized bicubically (``align_corners=False``) as a (d, gh, gw) image, the CLS position kept."""
        grid = (int(grid[0]), int(grid[1]))
        if grid == self.grid:
            return self.pos_embedding
        gh, gw = self.grid
        cls_pos, patch_pos = self.pos_embedding[:, :1], self.pos_embedding[:, 1:]
        img = patch_pos.reshape(1, gh, gw, self.dim).permute(0, 3, 1, 2)
        img = F.interpolate(img, size=grid, mode="bicubic", align_corners=False)
        return torch.cat((cls_pos, img.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], self.dim)), dim=1)

    def embed(self, x: Tensor) -> Tensor:
        """Patch tokens with the CLS token prepended and positions added: (B, N+1, d)."""
        grid = self.check_input(x)
        t = self.to_patch_embedding(x)
        cls = self.cls_token.expand(t.shape[0], -1, -1)
        return self.dropout(torch.cat((cls, t), dim=1) + self.position_embedding(grid))

    tokens = embed

    def pool_tokens(self, z: Tensor) -> Tensor:
        return z.mean(dim=1) if self.pool == "mean" else z[:, 0]

    def forward_head(self, z: Tensor) -> Tensor:
        return self.mlp_head(self.pool_tokens(z))

    def features(self, x: Tensor) -> Tensor:
        """The representation the final Linear classifier reads: the pooled tokens through the head's LayerNorm."""
        return self.mlp_head[:-1](self.pool_tokens(self.forward_features(x)))


class CausalTransformer(TransformerModel):
    """Causal language-model front end: ``x_0 = E[ids] + P[:N]``, blocks that never look ahead, then
    ``logits = LN(x_L) Eᵀ`` (``lm_head.weight is wte.weight``).

    Embeddings are N(0, 0.02²) in every family. With ``GPT2_INIT`` (GPT, and ToST whose language code is nanoGPT's)
    every ``nn.Linear`` is N(0, 0.02²) with zero bias and the projections that write into the residual stream
    (``to_out``, ``proj``, ``fc2``) N(0, 0.02²/(2L)); without it (the CRATE code's families) the operators keep their
    own initialisation. Measured on Tiny Shakespeare (nano size, 100 steps of 16 × 128, lr 2e-3), the GPT-2 scheme
    makes CRATE-GPT collapse to the unigram distribution (4.82 bits per byte against 3.73 with its own) and slows AoT
    (4.02 against 3.76); it changes ToST by 0.01.
    """

    causal: ClassVar[bool] = True
    GPT2_INIT: ClassVar[bool] = True

    def build_front(self, config) -> None:
        self.vocab_size, self.context = config.vocab_size, config.context
        self.wte = nn.Embedding(config.vocab_size, config.dim)
        self.wpe = nn.Embedding(config.context, config.dim)
        self.drop = nn.Dropout(config.emb_dropout)
        self.ln_f = nn.LayerNorm(config.dim)
        self.lm_head = nn.Linear(config.dim, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def after_init(self) -> None:
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
        if torch.compiler.is_exporting():  # a traced graph cannot branch on values; the runtime's gather checks them
            return
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise DataError(f"token ids must lie in [0, {self.vocab_size})")

    def embed(self, ids: Tensor) -> Tensor:
        """Token plus position embeddings: (B, N, d)."""
        self.check_tokens(ids)
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(self.wte(ids) + self.wpe(pos))

    def forward_head(self, z: Tensor) -> Tensor:
        """Next-token logits (B, N, vocab): position t predicts token t+1 from tokens ≤ t."""
        return self.lm_head(self.ln_f(z))

    @torch.no_grad()
    def generate(self, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``ids`` (B, N); the model sees the last ``context`` tokens.
        ``temperature`` 0 picks the most likely token; ``top_k`` keeps the k most likely before sampling."""
        from ..checks import check_int, check_number

        check_int(max_new_tokens, "the number of new tokens", low=0)
        check_number(temperature, "temperature", low=0.0)
        if top_k is not None:
            check_int(top_k, "top-k", low=1)
        if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.shape[1] == 0:
            raise DataError("generation needs a non-empty prompt of shape (batch, tokens)")
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                logits = self(ids[:, -self.context:])[:, -1]
                ids = torch.cat((ids, sample_next(logits, temperature, top_k, generator)), dim=1)
        finally:
            self.train(was_training)
        return ids


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """One token per row of ``logits`` (B, V): argmax if ``temperature == 0``, else a draw from
    ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits. Returns (B, 1) int64.
    Non-finite logits (a model with broken weights) and a temperature so small that the scaled logits overflow are
    refused, never sampled from."""
    from ..errors import NonFiniteError

    if not temperature >= 0 or math.isinf(temperature):
        raise ConfigError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top-k must be >= 1, got {top_k}")
    if not bool(torch.isfinite(logits).all()):
        raise NonFiniteError("the model's logits are not finite (NaN or inf): its weights are broken")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if not bool(torch.isfinite(logits).all()):
        raise ConfigError(f"temperature {temperature:g} is too small: the scaled logits overflow (use 0 for greedy)")
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).to(logits.device)
