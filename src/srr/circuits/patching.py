"""Record and patch activations in a forward pass, by name; ablate heads; a head-ablation table.

Every block of an srr transformer carries named hook points (:mod:`srr.models.base`): ``input``, ``attn_input``,
``attn_output``, ``mid``, ``output``; its attention operator carries ``heads``, the outputs of all heads
concatenated (B, N, K·p) before the output matrix, so that head h is the slice ``[h·p, (h+1)·p)``. A name here is
``"<layer>.<hook>"`` (``"0.attn_output"``, ``"1.heads"``) or ``"<layer>.pattern"``, the attention (B, K, N, N) that
the block's operator forms from its input (recorded, not patchable).

    with record(model, ["0.heads", "1.pattern"]) as acts:
        model(x)
    acts["0.heads"]                                  # a tensor, detached

    with patch(model, "0.attn_output", lambda a: torch.zeros_like(a)):
        y = model(x)                                 # the forward pass with that activation replaced
    with ablate_heads(model, [(1, 0)]):              # head 0 of layer 1 writes nothing (its slice set to 0)
        y = model(x)

Head ablation removes exactly the head's term ``W_O^h · out_h`` from the attention output (the output matrix is
linear; its bias stays). ``mode="mean"`` replaces the head's output by its mean over the batch and the tokens.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_choice
from ..errors import ConfigError

__all__ = ["hook_names", "record", "patch", "ablate_heads", "replace_head", "head_ablation_table", "model_loss"]

BLOCK_HOOKS = ("input", "attn_input", "attn_output", "mid", "output", "heads")
ABLATIONS = ("zero", "mean")


def _blocks(model: nn.Module) -> nn.ModuleList:
    blocks = getattr(model, "block_list", None)
    if blocks is None:
        raise ConfigError(f"{type(model).__name__} has no transformer blocks with hook points")
    return blocks


def hook_names(model: nn.Module) -> list[str]:
    """Every name :func:`record` accepts for ``model``."""
    names = []
    for layer, block in enumerate(_blocks(model)):
        names += [f"{layer}.{hook}" for hook in BLOCK_HOOKS if _module(block, hook) is not None]
        if hasattr(block.attention, "attention"):
            names.append(f"{layer}.pattern")
    return names


def _module(block: nn.Module, hook: str) -> nn.Module | None:
    if hook == "heads":
        return getattr(block.attention, "hook_heads", None)
    return getattr(block, f"hook_{hook}", None)


def _resolve(model: nn.Module, name: str) -> tuple[nn.Module, str, int]:
    blocks = _blocks(model)
    layer, _, hook = str(name).partition(".")
    if not layer.isdigit() or int(layer) >= len(blocks) or (hook not in BLOCK_HOOKS and hook != "pattern"):
        raise ConfigError(f"unknown activation {name!r}: names are <layer>.<hook> with layer in 0..{len(blocks) - 1} "
                          f"and hook one of {', '.join(BLOCK_HOOKS)}, pattern")
    block = blocks[int(layer)]
    if hook == "pattern" and not hasattr(block.attention, "attention"):
        raise ConfigError(f"{name}: {type(block.attention).__name__} forms no attention pattern")
    if hook != "pattern" and _module(block, hook) is None:
        raise ConfigError(f"{name}: {type(block.attention).__name__} has no hook point {hook!r}")
    return block, hook, int(layer)


@contextmanager
def record(model: nn.Module, names: Iterable[str] | None = None):
    """Yield a dict that the forward passes run inside the block fill with the named activations (detached; the
    last pass wins); ``None`` records every name of :func:`hook_names`."""
    names = hook_names(model) if names is None else list(names)
    acts: dict[str, Tensor] = {}
    handles = []
    try:
        for name in names:
            block, hook, _ = _resolve(model, name)

            def keep(_m, _i, out, name=name, block=block, hook=hook):
                acts[name] = block.attention.attention(out).detach() if hook == "pattern" else out.detach()

            point = block.hook_attn_input if hook == "pattern" else _module(block, hook)
            handles.append(point.register_forward_hook(keep))
        yield acts
    finally:
        for h in handles:
            h.remove()


@contextmanager
def patch(model: nn.Module, name: str, fn: Callable[[Tensor], Tensor]):
    """Inside the block, the activation ``name`` is replaced by ``fn(activation)`` (same shape) in every forward."""
    block, hook, _ = _resolve(model, name)
    if hook == "pattern":
        raise ConfigError("an attention pattern is recorded, not patched: patch the block's heads instead")

    def replace(_m, _i, out):
        new = fn(out)
        if not isinstance(new, Tensor) or new.shape != out.shape:
            raise ConfigError(f"patch {name}: the replacement must be a tensor of shape {tuple(out.shape)}")
        return new

    handle = _module(block, hook).register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def _head_slice(model: nn.Module, layer: int, head: int) -> slice:
    blocks = _blocks(model)
    if not 0 <= layer < len(blocks):
        raise ConfigError(f"layer {layer} is out of range 0..{len(blocks) - 1}")
    att = blocks[layer].attention
    if not 0 <= head < att.heads:
        raise ConfigError(f"head {head} is out of range 0..{att.heads - 1} in layer {layer}")
    return slice(head * att.dim_head, (head + 1) * att.dim_head)


@contextmanager
def replace_head(model: nn.Module, layer: int, head: int, value: Tensor | Callable[[Tensor], Tensor]):
    """Inside the block, head ``head`` of layer ``layer`` outputs ``value`` (B, N, p), or ``value(out_h)``."""
    sl = _head_slice(model, layer, head)

    def fn(out: Tensor) -> Tensor:
        out = out.clone()
        out[..., sl] = value(out[..., sl]) if callable(value) else value
        return out

    with patch(model, f"{layer}.heads", fn):
        yield


@contextmanager
def ablate_heads(model: nn.Module, heads: Iterable[tuple[int, int]], mode: str = "zero"):
    """Inside the block, every (layer, head) of ``heads`` writes nothing (``mode="zero"``) or its mean output over
    the batch and tokens (``"mean"``)."""
    check_choice(mode, "ablation mode", ABLATIONS)
    by_layer: dict[int, list[slice]] = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(_head_slice(model, int(layer), int(head)))

    def make(slices):
        def fn(out: Tensor) -> Tensor:
            out = out.clone()
            for sl in slices:
                part = out[..., sl]
                out[..., sl] = 0.0 if mode == "zero" else part.mean(dim=tuple(range(part.dim() - 1)), keepdim=True)
            return out
        return fn

    with ExitStack() as stack:
        for layer, slices in by_layer.items():
            stack.enter_context(patch(model, f"{layer}.heads", make(slices)))
        yield


@torch.no_grad()
def model_loss(model: nn.Module, x: Tensor, targets: Tensor | None = None) -> float:
    """Mean cross-entropy (nats): next-token for a language model (``x`` token ids), else of the labels."""
    logits = model(x).double()
    if logits.dim() == 3:
        logits, targets = logits[:, :-1], x[:, 1:] if targets is None else targets
    elif targets is None:
        raise ConfigError("a classifier's loss needs labels")
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)))


@torch.no_grad()
def head_ablation_table(model: nn.Module, x: Tensor, targets: Tensor | None = None, mode: str = "zero") -> dict:
    """The loss of ``model`` on ``x`` and, per head, the loss with that head ablated and the change:
    ``{"loss": L, "heads": [{"layer", "head", "loss", "delta"}, …]}``."""
    base = model_loss(model, x, targets)
    rows = []
    for layer, block in enumerate(_blocks(model)):
        for head in range(block.attention.heads):
            with ablate_heads(model, [(layer, head)], mode):
                loss = model_loss(model, x, targets)
            rows.append({"layer": layer, "head": head, "loss": loss, "delta": loss - base})
    return {"loss": base, "mode": mode, "heads": rows}
