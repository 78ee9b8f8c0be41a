"""``save_pretrained`` / ``from_pretrained``: safetensors weights plus a JSON configuration, as Hugging Face's.

A saved model is a folder with

* ``config.json``: ``{"model": registry name, "task": …, "args": {the configuration dataclass}, "srr_version", …}``
  plus what the run that wrote it knows about its input: ``data`` (the data spec), ``preprocessing`` (``mean``,
  ``std``, ``image_size``, ``channels`` of the standardisation) or ``tokenizer``, and the training ``objective``;
* ``model.safetensors``: the state dict;
* ``README.md``: the model card (:mod:`srr.models.card`: configuration, data, metrics, citation), never read back.

``from_pretrained`` also takes a Hugging Face Hub id (``"org/name"`` or ``"org/name@revision"``) that is not a local
path: the three files are fetched through ``huggingface_hub`` into its cache (``HF_HUB_CACHE`` / ``HF_HOME``; with
``HF_HUB_OFFLINE=1`` only the cache is read) and loaded from there like a local folder. ``model.push_to_hub(id)``
uploads a saved folder. ``huggingface_hub`` is the optional extra ``srr[hub]``, imported only when a Hub id is used.

Loading never unpickles anything. The configuration is checked field by field (a corrupt ``config.json`` with a
width of 1e9 is refused before anything is allocated); the weights' header is read first and every tensor must have
the name, shape and floating dtype the configuration implies, and finite values (NaN or inf weights, or a weight file
in bool or int64, are refused rather than cast). Both files are written atomically (:mod:`srr.io`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, DataFileNotFoundError, NonFiniteError, SrrError, one_line
from ..io import atomic_path, atomic_write_json, atomic_write_text, read_structured
from ..version import __version__

__all__ = ["save_pretrained", "from_pretrained", "read_config", "load_weights", "PretrainedMixin", "CONFIG_NAME",
           "WEIGHTS_NAME", "CARD_NAME", "MAX_CONFIG_BYTES", "resolve_pretrained", "is_hub_id", "push_to_hub"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
MAX_CONFIG_BYTES = 1 << 20
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(@[A-Za-z0-9_./-]{1,200})?$")


def save_pretrained(model: nn.Module, directory: str | os.PathLike, extra: dict | None = None,
                    metrics: dict | None = None) -> Path:
    """Write ``model`` (built by :func:`srr.create_model`) to ``directory``; ``extra`` is kept in ``config.json``,
    ``metrics`` (headline figures) go into the model card ``README.md``."""
    from .card import model_card

    from safetensors.torch import save_file

    name, config = getattr(model, "name", None), getattr(model, "config", None)
    if not name or not hasattr(config, "to_dict"):
        raise CheckpointError("only models built with srr.create_model carry the name and configuration that "
                              "save_pretrained writes")
    directory = Path(directory)
    state = model.state_dict()  # a tied weight (an LM head tied to its embedding) is stored once
    tensors = {group[0]: state[group[0]].detach().to("cpu").contiguous() for group in _alias_groups(model)}
    for key, value in tensors.items():  # what every reader refuses is not written (nor pushed to the Hub)
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise NonFiniteError(f"{name}: {key} holds {bad} non-finite value(s) (NaN or inf); refusing to save "
                                 "weights that no srr reader would load")
    record = {"model": name, "task": type(config).task, "args": config.to_dict(), "srr_version": __version__,
              **(extra or {})}
    if record.get("preprocessing") is not None:  # what read_config would refuse is not written
        record["preprocessing"] = check_preprocessing(record["preprocessing"], "preprocessing", complete=False)
    directory.mkdir(parents=True, exist_ok=True)  # nothing is created for a refused model
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_json(directory / CONFIG_NAME, record)
    atomic_write_text(directory / CARD_NAME, model_card(record, metrics))
    return directory


def is_hub_id(text: str) -> bool:
    """Whether ``text`` names a Hub repository (``org/name[@revision]``) rather than a path that exists here: a
    path whose first component is a local folder (``runs/demo``) is a path, even when it is missing."""
    text = str(text)
    if not _HUB_ID.match(text) or Path(text).exists():
        return False
    return not Path(text.split("/", 1)[0]).is_dir()


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError("reading or writing the Hugging Face Hub needs the package huggingface_hub: "
                          "pip install 'srr[hub]'") from None
    return huggingface_hub


def resolve_pretrained(source: str | os.PathLike) -> Path:
    """A local folder as it is; a Hub id (:func:`is_hub_id`) as the folder of its files in the Hub cache (fetched
    when missing and the network is allowed; ``HF_HUB_OFFLINE=1`` reads the cache only)."""
    if not is_hub_id(str(source)):
        return Path(source)
    hub = _hub()
    repo, _, revision = str(source).partition("@")
    try:
        folder = hub.snapshot_download(repo, revision=revision or None, repo_type="model",
                                       allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME])
    except Exception as exc:  # the client raises many kinds (offline, not found, HTTP): one line either way
        offline = " (HF_HUB_OFFLINE is set: only the local cache is read)" if os.environ.get("HF_HUB_OFFLINE") \
            not in (None, "", "0") else ""
        raise DataFileNotFoundError(f"{source} is neither a folder here nor a model found on the Hugging Face Hub"
                                    f"{offline}: {one_line(exc, 1)}") from None
    return Path(folder)


def push_to_hub(model: nn.Module, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str = "Upload srr model", extra: dict | None = None,
                metrics: dict | None = None) -> str:
    """Save ``model`` (with its card) to a temporary folder and upload it to the Hub repository ``repo_id``
    (created if missing). Returns the repository's URL as the client reports it."""
    import tempfile

    if not _HUB_ID.match(str(repo_id)) or "@" in str(repo_id):
        raise ConfigError(f"push_to_hub needs a repository id 'org/name', got {repo_id!r}")
    with tempfile.TemporaryDirectory(prefix="srr-push-") as tmp:
        record = read_config_if_any(getattr(model, "saved_from", None))
        save_pretrained(model, tmp, {**record, **(extra or {})}, metrics)  # checks the weights before any upload
        api = _hub().HfApi(token=token)
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(folder_path=tmp, repo_id=repo_id, repo_type="model", commit_message=commit_message)
    return str(url)


def read_config_if_any(directory) -> dict:
    """What a saved folder's ``config.json`` records beyond the model itself (data, preprocessing, objective), so a
    model loaded from a run and pushed keeps them; empty for a model that was not loaded."""
    if directory is None:
        return {}
    try:
        record = read_config(directory)
    except SrrError:
        return {}
    return {k: v for k, v in record.items() if k not in ("model", "task", "args", "srr_version")}


def read_config(directory: str | os.PathLike) -> dict:
    """The ``config.json`` of a saved model, checked for its form (not yet its values)."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise DataFileNotFoundError(f"{directory} holds no {CONFIG_NAME}: not a saved srr model")
    config = read_structured(path, "a model configuration", CheckpointError, MAX_CONFIG_BYTES)
    if not isinstance(config.get("model"), str) or not isinstance(
            config.get("args", {}), dict):
        raise CheckpointError(f"{path} does not describe a model (needs 'model' and 'args')")
    if config.get("preprocessing") is not None:
        config["preprocessing"] = check_preprocessing(config["preprocessing"], f"{path}: preprocessing",
                                                      complete=False)
    return config


#: Bounds of a recorded preprocessing: image sides, ``resize`` (pixels), channels, |mean|, std (the data sources
#: clamp a channel's std at 1e-6).
MAX_IMAGE_SIDE, MAX_RESIZE, MAX_CHANNELS, MEAN_BOUND, STD_RANGE = 32768, 16384, 4096, 1e12, (1e-6, 1e12)


def check_preprocessing(pre, where: str = "preprocessing", complete: bool = True) -> dict:
    """The preprocessing a saved model records (``image_size``: a side or [h, w]; ``channels``; ``mean`` and
    ``std``: one finite number per channel, std at least 1e-6; optional ``resize``: 0 or a side), checked where
    ``config.json`` enters: a NaN mean, a zero side or a resize of 100,000 would otherwise reach the image pipeline
    as NaN probabilities, a division by zero or an allocation of gigabytes. With ``complete`` (preparing images)
    image_size, channels, mean and std must all be there; without it (reading any saved model: a ReduNet on
    vectors records only mean and std) the keys present are checked."""
    from ..checks import check_int, check_number

    if not isinstance(pre, dict):
        raise CheckpointError(f"{where} must be an object, got {type(pre).__name__}")
    missing = [k for k in ("image_size", "channels", "mean", "std") if k not in pre]
    if complete and missing:
        raise CheckpointError(f"{where} lacks {', '.join(missing)} (needs image_size, channels, mean and std)")
    out = dict(pre)
    if "image_size" in pre:
        size = pre["image_size"]
        sides = [size] if not isinstance(size, (list, tuple)) else list(size)
        if len(sides) not in (1, 2):
            raise CheckpointError(f"{where}.image_size must be a side or [height, width], got {size!r}")
        sides = [check_int(v, f"{where}.image_size", low=1, high=MAX_IMAGE_SIDE, error=CheckpointError)
                 for v in sides]
        out["image_size"] = sides[0] if not isinstance(size, (list, tuple)) else sides
    if "channels" in pre:
        out["channels"] = check_int(pre["channels"], f"{where}.channels", low=1, high=MAX_CHANNELS,
                                    error=CheckpointError)
    for key, (low, high) in (("mean", (-MEAN_BOUND, MEAN_BOUND)), ("std", STD_RANGE)):
        if key not in pre:
            continue
        values = pre[key]
        count = out.get("channels")
        if not isinstance(values, (list, tuple)) or not values or (count is not None and len(values) != count):
            raise CheckpointError(f"{where}.{key} must list one number per channel"
                                  f"{f' ({count})' if count is not None else ''}, got {values!r}")
        out[key] = [check_number(v, f"{where}.{key}", low=low, high=high, error=CheckpointError) for v in values]
    if pre.get("resize") is not None:
        out["resize"] = check_int(pre["resize"], f"{where}.resize", low=0, high=MAX_RESIZE, error=CheckpointError)
    return out


def _alias_groups(model: nn.Module) -> list[list[str]]:
    """State-dict keys grouped by the tensor they name (tied weights share a group), in state-dict order."""
    groups: dict[tuple, list[str]] = {}
    for key, value in model.state_dict(keep_vars=True).items():
        groups.setdefault((value.data_ptr(), tuple(value.shape), value.dtype) if value.numel() else (key,),
                          []).append(key)
    return list(groups.values())


def load_weights(model: nn.Module, path: str | os.PathLike, device: str | torch.device = "cpu",
                 what: str | None = None) -> None:
    """Load the safetensors file ``path`` into ``model`` strictly: the header is read first and must list exactly the
    model's tensors with their shapes and floating dtypes; the values must be finite."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    what = what or type(model).__name__
    expected = model.state_dict()
    groups = _alias_groups(model)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            keys = set(fh.keys())
            missing = sorted(g[0] for g in groups if not keys.intersection(g))
            unexpected = sorted(keys - set(expected))
            if missing or unexpected:
                raise CheckpointError(f"{path} does not fit {what}: missing {missing[:5]}, unexpected {unexpected[:5]}")
            for key in sorted(keys):
                sl = fh.get_slice(key)
                shape, want = tuple(sl.get_shape()), expected[key]
                if shape != tuple(want.shape):
                    raise CheckpointError(f"{path} does not fit {what}: {key} has shape {list(shape)}, the model's "
                                          f"is {list(want.shape)}")
                dtype = sl.get_dtype()
                if want.is_floating_point() and not dtype.startswith(("F", "BF")):
                    raise CheckpointError(f"{path}: {key} is stored as {dtype}, not as floating point; refusing to "
                                          "cast it")
            state = {key: fh.get_tensor(key) for key in sorted(keys)}
    except SrrError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {one_line(exc, 1)}") from None
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"{path}: {key} holds {bad} non-finite value(s) (NaN or inf); refusing the weights")
    for group in groups:  # every name of a tied tensor receives the stored value
        stored = next(k for k in group if k in state)
        for key in group:
            state.setdefault(key, state[stored])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit {what}: {one_line(exc)}") from None
    model.to(device)
    getattr(model, "on_load", lambda: None)()


def from_pretrained(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved in ``directory`` (checked configuration) and load its weights strictly."""
    from ..device import pick_device
    from .registry import create_model

    directory = resolve_pretrained(directory)
    config = read_config(directory)
    device = pick_device(map_location)  # a clear error for a device that does not exist here
    try:
        model = create_model(config["model"], **config.get("args", {}))
    except SrrError as exc:
        raise type(exc)(f"{directory / CONFIG_NAME}: {exc}") from None
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise DataFileNotFoundError(f"{directory} holds no {WEIGHTS_NAME}")
    load_weights(model, weights, device, config["model"])
    model.saved_from = directory
    return model


class PretrainedMixin:
    """``model.save_pretrained(dir)`` and ``Class.from_pretrained(dir)`` for a registered model class."""

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        metrics: dict | None = None) -> Path:
        return save_pretrained(self, directory, extra, metrics)

    def push_to_hub(self, repo_id: str, **kw) -> str:
        """Upload this model (config, weights, model card) to the Hub repository ``repo_id``; see
        :func:`srr.models.hub.push_to_hub`."""
        return push_to_hub(self, repo_id, **kw)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
        model = from_pretrained(directory, map_location)
        if not isinstance(model, cls):
            raise CheckpointError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def on_load(self) -> None:
        """Called after weights were loaded (a constructed ReduNet marks itself built)."""
