"""Converting the authors' official checkpoints into srr models (``srr convert SRC DEST``).

Every reader opens its file without running code: PyTorch files with ``torch.load(weights_only=True)`` (DINO's
``args`` namespace is the one extra type allowed), JAX/Flax trees from ``.npz`` (``allow_pickle=False``) or Flax's
msgpack. Shapes are checked against the configuration read from the checkpoint before anything is copied, and the
result is loaded strictly, so a file of another architecture is refused naming the first key that does not fit.

==========  ==========================================================  ==========================================
kind        the file as the authors ship it                             becomes
==========  ==========================================================  ==========================================
``crate``   ``checkpoint.pth.tar``: ``{"state_dict": …, "epoch", …}``   ``crate_*`` (their key names are srr's)
            with DataParallel's ``module.`` prefixes (or a bare state
            dict)
``crate_alpha``  big_vision parameter tree: ``.npz`` of ``a/b/c`` keys, or  ``crate_alpha_*`` with ``patch_norm=False``
            Flax msgpack (``params/embedding/kernel`` (p, p, C, d),      (the Conv is a Linear on patches) and
            ``cls``, ``pos_embedding``, ``Transformer/encoderblock_i/…``, ``norm_eps=1e-6``
            ``encoder_norm``, ``head``)
``tost``    the authors' ToST vision checkpoint (XCiT training: ``model``  ``tost_*_official`` (conv stem, Fourier
            or ``state_dict`` wrapper, ``module.`` prefixes)            positions, class attention)
``simdino`` DINO / SimDINO ``checkpoint.pth`` (``teacher`` or ``student``   ``vit_*`` backbone with ``patch_norm=False``,
            state dicts, ``module.``/``backbone.`` prefixes, the         ``norm_eps=1e-6``; its final LayerNorm is
            projection head dropped) or a bare backbone state dict     the head's and the head's Linear the
                                                                        identity: the output is the [CLS] feature
==========  ==========================================================  ==========================================

The configuration (width, depth, patch, image size, classes) is read from the tensors' shapes; what shapes cannot
tell — the number of heads — comes from the published sizes of the width (CRATE: 384 → 6, 576 → 12, 768 → 12,
1024 → 16; CRATE-α: 192 → 3 and the same; ViT: 64 per head) unless given (``heads=``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import Tensor

from ..checks import check_memory
from ..errors import CheckpointError, ConfigError, DataError, DataFileNotFoundError, ResourceError, SrrError, one_line

__all__ = ["KINDS", "read_torch", "read_flax", "crate_state", "crate_alpha_state", "tost_state", "simdino_state",
           "convert", "detect_kind"]

KINDS = ("crate", "crate_alpha", "tost", "simdino")
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
CRATE_HEADS = {384: 6, 576: 12, 768: 12, 1024: 16, 192: 3}


def read_torch(path: str | os.PathLike) -> dict:
    """A PyTorch checkpoint as plain containers of tensors (``weights_only``; an ``argparse.Namespace`` allowed)."""
    import argparse

    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or a damaged file: never run what it holds
        raise CheckpointError(f"{path} is not a PyTorch checkpoint srr can read safely: {one_line(exc, 1)}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a dictionary of tensors")
    return obj


def read_flax(path: str | os.PathLike) -> dict[str, Tensor]:
    """A JAX/Flax parameter tree flattened to ``{"a/b/c": tensor}``: ``.npz`` (big_vision's format) or msgpack
    (``flax.serialization``), without a leading ``params/``."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"checkpoint not found: {path}")
    flat: dict[str, np.ndarray] = {}
    try:
        if path.suffix == ".npz":
            flat = _read_npz(path)
        else:
            check_memory(3 * path.stat().st_size, f"{path}: a msgpack tree of {path.stat().st_size:,} bytes")
            flat = _read_msgpack(path)
    except (CheckpointError, ResourceError):
        raise
    except Exception as exc:
        raise CheckpointError(f"{path} is not a Flax parameter tree srr can read: {one_line(exc, 1)}") from None
    out = {}
    for key, value in flat.items():
        key = key.replace(".", "/")
        key = key[len("params/"):] if key.startswith("params/") else key
        if value.dtype.kind != "f":
            raise CheckpointError(f"{path}: {key} is stored as {value.dtype}, not as floating point")
        out[key] = torch.from_numpy(np.array(value, dtype=np.float32))
    return out


def _read_npz(path: Path) -> dict:
    """The arrays of an ``.npz`` tree, sized from the zip directory and the ``.npy`` headers before any is read:
    a member that declares more than its compressed size can hold (a deflate bomb) or more than memory is refused
    (the data loaders' rules, :mod:`srr.data.npz`)."""
    import zipfile

    import numpy as np

    from ..data.npz import _header

    with zipfile.ZipFile(path) as zf:
        members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
        try:
            sizes = [_header(zf, info, path)[2] for info in members]
        except DataError as exc:
            raise CheckpointError(str(exc)) from None
        check_memory(2 * sum(sizes),
                     f"{path}: {len(members)} array(s) of {sum(sizes):,} bytes (and their float32 copy)")
        out = {}
        for info in members:
            with zf.open(info) as fp:
                out[info.filename[:-4]] = np.lib.format.read_array(fp, allow_pickle=False)
        return out


def _read_msgpack(path: Path) -> dict:
    """Flax's msgpack: nested maps, arrays as extension type 1 = msgpack([shape, dtype name, raw bytes])."""
    import numpy as np
    try:
        import msgpack
    except ImportError:
        raise ConfigError("reading a Flax msgpack checkpoint needs the package msgpack: pip install 'srr[convert]' "
                          "(or save the tree as .npz)") from None

    def ext(code, data):
        if code != 1:
            raise CheckpointError(f"{path}: unknown msgpack extension type {code}")
        shape, dtype, buffer = msgpack.unpackb(data, raw=False)
        return np.frombuffer(buffer, dtype=np.dtype(dtype)).reshape(shape)

    tree = msgpack.unpackb(path.read_bytes(), ext_hook=ext, raw=False, strict_map_key=False)
    flat = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}/{k}" if prefix else str(k))
        elif isinstance(node, np.ndarray):
            flat[prefix] = node
        else:
            raise CheckpointError(f"{path}: {prefix} is a {type(node).__name__}, not an array")

    walk(tree, "")
    return flat


def _strip(state: dict, prefixes: tuple[str, ...]) -> dict:
    out = {}
    for k, v in state.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def _square(n: int, what: str) -> int:
    r = math.isqrt(n)
    if r * r != n:
        raise CheckpointError(f"{what}: {n} patches do not form a square grid; pass image_size=[h,w]")
    return r


def _heads(dim: int, table: dict, overrides: dict, per_head: int | None = None) -> int:
    if "heads" in overrides:
        return int(overrides["heads"])
    if dim in table:
        return table[dim]
    if per_head and dim % per_head == 0:
        return dim // per_head
    raise ConfigError(f"cannot tell the number of heads of a width of {dim} from the checkpoint; pass heads=K")


def crate_state(obj: dict, overrides: dict) -> tuple[str, dict, dict]:
    """``(registry name, configuration overrides, state dict)`` of the authors' CRATE checkpoint."""
    state = obj.get("state_dict", obj.get("model", obj))
    state = _strip({k: v for k, v in state.items() if torch.is_tensor(v)}, ("module.",))
    try:
        pos, patch_w, head = state["pos_embedding"], state["to_patch_embedding.2.weight"], state["mlp_head.1.weight"]
    except KeyError as exc:
        raise CheckpointError(f"not a CRATE checkpoint: no {exc.args[0]}") from None
    dim = pos.shape[-1]
    depth = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.layers."))
    channels = int(overrides.get("channels", 3))
    patch = math.isqrt(patch_w.shape[1] // channels)
    grid = _square(pos.shape[1] - 1, "CRATE")
    heads = _heads(dim, CRATE_HEADS, overrides)
    args = {"dim": dim, "depth": depth, "heads": heads, "patch_size": patch, "image_size": grid * patch,
            "channels": channels, "num_classes": head.shape[0], "pool": "cls", **overrides}
    return _sized("crate", dim), args, state


def _sized(family: str, dim: int) -> str:
    """The registry entry of the published size of this width (its fields are all overridden anyway)."""
    return f"{family}_" + {192: "tiny", 384: "tiny", 576: "small", 768: "base", 1024: "large"}.get(dim, "tiny")


def crate_alpha_state(flat: dict[str, Tensor], overrides: dict) -> tuple[str, dict, dict]:
    """The big_vision CRATE-α tree as an srr ``crate_alpha`` state dict (the Flax structure in the module docstring:
    Dense kernels are (in, out), the patch Conv's (p, p, C, d) in the (p1, p2, c) order of srr's patches)."""
    try:
        kernel, pos = flat["embedding/kernel"], flat["pos_embedding"]
    except KeyError as exc:
        raise CheckpointError(f"not a CRATE-α parameter tree: no {exc.args[0]}") from None
    p, _, channels, dim = kernel.shape
    depth = 1 + max(int(k.split("/")[1].rpartition("_")[2]) for k in flat if k.startswith("Transformer/encoderblock_"))
    ratio = flat["Transformer/encoderblock_0/OvercompleteISTABlock_0/D"].shape[1] // dim
    state = {"to_patch_embedding.2.weight": kernel.reshape(p * p * channels, dim).T,
             "to_patch_embedding.2.bias": flat["embedding/bias"], "cls_token": flat["cls"], "pos_embedding": pos,
             "mlp_head.0.weight": flat["encoder_norm/scale"], "mlp_head.0.bias": flat["encoder_norm/bias"],
             "mlp_head.1.weight": flat["head/kernel"].T, "mlp_head.1.bias": flat["head/bias"]}
    for i in range(depth):
        b, t = f"Transformer/encoderblock_{i}/", f"transformer.layers.{i}."
        attn = b + "MultiHeadDotProductSubspaceAttention_0/"
        state.update({t + "0.norm.weight": flat[b + "LayerNorm_0/scale"], t + "0.norm.bias": flat[b + "LayerNorm_0/bias"],
                      t + "0.fn.qkv.weight": flat[attn + "proj/kernel"].reshape(dim, -1).T,
                      t + "0.fn.to_out.0.weight": flat[attn + "out/kernel"].reshape(-1, dim).T,
                      t + "1.norm.weight": flat[b + "LayerNorm_1/scale"], t + "1.norm.bias": flat[b + "LayerNorm_1/bias"],
                      t + "1.fn.D": flat[b + "OvercompleteISTABlock_0/D"],
                      t + "1.fn.D1": flat[b + "OvercompleteISTABlock_0/D1"]})
    if any("/ls1/" in k or k.endswith("/ls1") for k in flat):
        raise CheckpointError("this CRATE-α tree has LayerScale (ls1, ls2), which srr's CRATE-α does not have")
    heads = _heads(dim, CRATE_HEADS, overrides)
    args = {"dim": dim, "depth": depth, "heads": heads, "overcomplete_ratio": ratio, "patch_size": p,
            "image_size": _square(pos.shape[1] - 1, "CRATE-α") * p, "channels": channels,
            "num_classes": flat["head/kernel"].shape[1], "pool": "cls", "patch_norm": False, "norm_eps": 1e-6,
            **overrides}
    return _sized("crate_alpha", dim), args, state


def simdino_state(obj: dict, overrides: dict, which: str = "teacher") -> tuple[str, dict, dict]:
    """A DINO/SimDINO ViT backbone as an srr ``vit`` state dict whose head outputs the [CLS] feature."""
    state = obj.get(which, obj) if isinstance(obj.get(which), dict) else obj
    state = _strip({k: v for k, v in state.items() if torch.is_tensor(v)}, ("module.", "backbone."))
    state = {k: v for k, v in state.items() if not k.startswith("head.")}  # the projection head of training
    try:
        conv, pos = state.pop("patch_embed.proj.weight"), state.pop("pos_embed")
    except KeyError as exc:
        raise CheckpointError(f"not a DINO ViT checkpoint: no {exc.args[0]}") from None
    dim, channels, p, _ = conv.shape
    out = {"to_patch_embedding.2.weight": conv.permute(0, 2, 3, 1).reshape(dim, -1),
           "to_patch_embedding.2.bias": state.pop("patch_embed.proj.bias"), "pos_embedding": pos,
           "cls_token": state.pop("cls_token"), "mlp_head.0.weight": state.pop("norm.weight"),
           "mlp_head.0.bias": state.pop("norm.bias"), "mlp_head.1.weight": torch.eye(dim),
           "mlp_head.1.bias": torch.zeros(dim)}
    out.update(state)  # blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}: srr's ViT names
    depth = 1 + max(int(k.split(".")[1]) for k in out if k.startswith("blocks."))
    hidden = out["blocks.0.mlp.fc1.weight"].shape[0]
    heads = _heads(dim, {}, overrides, per_head=64)
    args = {"dim": dim, "depth": depth, "heads": heads, "mlp_ratio": hidden / dim, "patch_size": p,
            "image_size": _square(pos.shape[1] - 1, "DINO ViT") * p, "channels": channels, "num_classes": dim,
            "pool": "cls", "qkv_bias": "blocks.0.attn.qkv.bias" in out, "patch_norm": False, "norm_eps": 1e-6,
            **overrides}
    return {192: "vit_tiny", 384: "vit_small", 768: "vit_base"}.get(dim, "vit_small"), args, out


def tost_state(obj: dict, overrides: dict) -> tuple[str, dict, dict]:
    """The authors' ToST vision checkpoint as an srr ``tost_*_official`` state dict (their key names are srr's).
    Heads are read from the temperatures τ (K, 1); the image size is not in the weights (default 224)."""
    state = obj.get("model", obj.get("state_dict", obj))
    state = _strip({k: v for k, v in state.items() if torch.is_tensor(v)}, ("module.",))
    try:
        cls, temp, head = state["cls_token"], state["blocks.0.attn.temp"], state["head.weight"]
    except KeyError as exc:
        raise CheckpointError(f"not a ToST checkpoint: no {exc.args[0]}") from None
    dim = cls.shape[-1]
    convs = sorted(int(k.split(".")[2]) for k in state if k.startswith("patch_embed.proj.") and k.endswith(".0.weight"))
    args = {"dim": dim, "depth": 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks.")),
            "heads": temp.shape[0], "patch_size": 2 ** len(convs),
            "channels": state[f"patch_embed.proj.{convs[0]}.0.weight"].shape[1], "num_classes": head.shape[0],
            "cls_attn_depth": len({k.split(".")[1] for k in state if k.startswith("cls_attn_blocks.")}),
            "mlp_ratio": state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
            "layer_scale": 1.0 if "blocks.0.gamma1" in state else None, **overrides}
    return "tost_small_official" if dim == 384 else "tost_tiny_official", args, state


def detect_kind(path: Path) -> str:
    """``crate_alpha`` for a Flax tree (``.npz``/``.msgpack``), else ``simdino`` when the checkpoint holds a teacher
    or DINO's key names, else ``crate``."""
    if path.suffix in (".npz", ".msgpack", ".flax"):
        return "crate_alpha"
    obj = read_torch(path)
    keys = set(obj.get("teacher", obj.get("state_dict", obj)))
    if "teacher" in obj or any(k.endswith("pos_embed") for k in keys):
        return "simdino"
    keys = set(obj.get("model", keys)) if isinstance(obj.get("model"), dict) else keys
    return "tost" if any(k.endswith("attn.temp") for k in keys) else "crate"


def convert(src: str | os.PathLike, dest: str | os.PathLike, kind: str | None = None,
            overrides: dict | None = None, which: str | None = None):
    """Convert the checkpoint ``src`` (``kind`` detected when omitted) into an srr model saved at ``dest``
    (``config.json``, ``model.safetensors``, model card). Returns the model."""
    from ..checks import check_choice, check_int
    from ..models import create_model, save_pretrained
    from ..models.hub import load_weights  # noqa: F401  (the strict reader's rules apply below too)
    from ..runfolder import check_output_folder, publish_folder

    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"overrides must be a dict of model settings, got {type(overrides).__name__}")
    src, overrides = Path(src), dict(overrides or {})
    if kind is not None:
        check_choice(kind, "checkpoint kind", KINDS)
    if which is None:
        which = "teacher"
    else:
        check_choice(which, "--which", ("teacher", "student"))
    # the settings the readers compute with are checked before they are used (the rest by create_model)
    for key, high in (("heads", 65536), ("channels", 4096)):
        if key in overrides:
            overrides[key] = check_int(overrides[key], key, low=1, high=high)
    if not src.is_file():
        raise DataFileNotFoundError(f"checkpoint not found: {src}")
    dest = check_output_folder(dest, [src])
    try:
        kind = kind or detect_kind(src)
        if which != "teacher" and kind != "simdino":
            raise ConfigError(f"--which chooses the network of a SimDINO checkpoint; {src} is read as {kind}")
        if kind == "crate_alpha":
            name, args, state = crate_alpha_state(read_flax(src), overrides)
        elif kind == "tost":
            name, args, state = tost_state(read_torch(src), overrides)
        elif kind == "simdino":
            name, args, state = simdino_state(read_torch(src), overrides, which)
        else:
            name, args, state = crate_state(read_torch(src), overrides)
    except SrrError:
        raise
    except (KeyError, ValueError, IndexError, TypeError, AttributeError, ZeroDivisionError, RuntimeError) as exc:
        # a file of the right format but not the structure this kind has (a missing block, a tensor of another
        # rank, a key that is not numbered): one line naming the file, never a traceback
        raise CheckpointError(f"{src} does not have the structure of a {kind or 'known'} checkpoint: "
                              f"{type(exc).__name__}: {one_line(exc, 1)}") from None
    model = create_model(name, **args)
    expected = model.state_dict()
    for key, value in state.items():
        if not torch.is_tensor(value):
            raise CheckpointError(f"{src}: {key} is a {type(value).__name__}, not a tensor")
        if key in expected and tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{src}: {key} has shape {list(value.shape)}, the converted {name} expects "
                                  f"{list(expected[key].shape)}")
        if key in expected and expected[key].is_floating_point() and not value.is_floating_point():
            raise CheckpointError(f"{src}: {key} is stored as {value.dtype}, not as floating point; refusing to "
                                  "cast it")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{src}: {key} holds non-finite values; refusing the weights")
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{src} does not fit {name}: {one_line(exc)}") from None
    size = args.get("image_size", model.config.image_size)
    pre = {**IMAGENET, "image_size": [size, size] if isinstance(size, int) else list(size),
           "channels": args["channels"]}
    if args["channels"] != 3:
        pre.update(mean=[0.5] * args["channels"], std=[0.5] * args["channels"])
    with publish_folder(dest) as tmp:  # the folder appears whole, or not at all
        save_pretrained(model.eval(), tmp, extra={"converted_from": f"{kind}:{src.name}", "preprocessing": pre})
    return model
