"""Training checkpoints that survive a crash at any instant, and load without unpickling code.

Layout under the run folder::

    checkpoints/step-000000120/model.safetensors   the model's state dict (safetensors: tensors only)
                               state.pt            optimiser, scheduler, scaler, RNG states, data position
                                                   (torch.save of tensors/numbers/lists/dicts; read with
                                                   torch.load(weights_only=True))
                               meta.json           step, epoch, position, file sizes; written last
    checkpoints/latest                             the name of the newest complete checkpoint

Writing: every file goes into a fresh hidden folder ``checkpoints/.tmp-…``, each is fsynced, then the folder, and
one ``rename`` publishes it as ``step-…`` (the commit point); ``latest`` is then replaced atomically (temp file,
fsync, rename) and older checkpoints beyond ``keep`` are deleted. A SIGKILL before the rename leaves only a hidden
temp folder (ignored, removed by the next save); after it, the new checkpoint is complete even if ``latest`` still
names the previous one, which is also still complete. A step that already has a complete checkpoint is
never rewritten (the new copy is dropped), so no instant exists without it. :func:`find_latest` trusts ``latest`` when the folder it
names checks out, and otherwise takes the newest ``step-*`` folder whose files all check out.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch

from ..errors import CheckpointError, one_line
from ..io import _fsync_dir, atomic_write_text, make_shared_dir

__all__ = ["save_checkpoint", "find_latest", "load_checkpoint", "list_checkpoints", "CHECKPOINT_DIR"]

CHECKPOINT_DIR = "checkpoints"
_FILES = ("model.safetensors", "state.pt", "meta.json")

# Test hook: called with the name of each stage of a save (lets a test SIGKILL the writer at every boundary).
crash_point: Callable[[str], None] | None = None


def _point(name: str) -> None:
    if crash_point is not None:
        crash_point(name)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _name(step: int) -> str:
    return f"step-{step:09d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Published checkpoint folders, oldest first."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))


def save_checkpoint(run_dir: str | Path, step: int, model_state: dict, train_state: dict, meta: dict,
                    keep: int = 2) -> Path:
    """Write one checkpoint atomically (see the module docstring); returns its folder."""
    from safetensors.torch import save as save_tensors

    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / _name(step)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tensors, seen = {}, set()
    for k, v in model_state.items():  # tied weights share storage: safetensors stores each name's own copy
        cpu = v.detach().to("cpu").contiguous()
        tensors[k] = cpu.clone() if cpu.data_ptr() in seen else cpu
        seen.add(cpu.data_ptr())
    buffer = io.BytesIO()
    torch.save(train_state, buffer)
    payloads = {"model.safetensors": save_tensors(tensors), "state.pt": buffer.getvalue()}
    meta = {**meta, "step": step, "sizes": {k: len(v) for k, v in payloads.items()}}
    payloads["meta.json"] = (json.dumps(meta, indent=2) + "\n").encode()
    tmp = make_shared_dir(tempfile.mkdtemp(dir=root, prefix=f".tmp-{_name(step)}-"))
    _point("tmpdir")
    try:
        for fname, data in payloads.items():
            _write_synced(tmp / fname, data)
            _point(fname)
        _fsync_dir(tmp)
    except OSError:  # a full disk: nothing half-written stays behind to confuse a resume
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point("synced")
    if final.exists():
        if _check(final) is not None:  # the same step again: the complete one stays, never a gap without it
            shutil.rmtree(tmp, ignore_errors=True)
            _point("kept")
            atomic_write_text(root / "latest", final.name + "\n")
            return final
        shutil.rmtree(final)  # an incomplete leftover (e.g. an interrupted deletion)
    os.rename(tmp, final)
    _fsync_dir(root)
    _point("renamed")
    atomic_write_text(root / "latest", final.name + "\n")
    _point("latest")
    for old in list_checkpoints(run_dir)[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
            _point("pruned")
    return final


def _check(folder: Path) -> dict | None:
    """``meta`` of a complete checkpoint folder, or None."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        sizes = meta["sizes"]
        if all((folder / f).stat().st_size == sizes[f] for f in _FILES if f != "meta.json"):
            return meta
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def find_latest(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of ``run_dir`` (``latest`` if it checks out), or None if there is none."""
    root = Path(run_dir) / CHECKPOINT_DIR
    try:
        named = root / (root / "latest").read_text(encoding="utf-8").strip()
        if named.name.startswith("step-") and _check(named) is not None:
            newer = [p for p in list_checkpoints(run_dir) if p.name > named.name and _check(p) is not None]
            return newer[-1] if newer else named
    except OSError:
        pass
    complete = [p for p in list_checkpoints(run_dir) if _check(p) is not None]
    return complete[-1] if complete else None


def _refusal(exc: Exception) -> str:
    """One line for a state file that ``torch.load(weights_only=True)`` refused or could not read."""
    text = str(exc)
    if "Weights only load failed" in text:
        # torch's first paragraph advises weights_only=False (unsafe here); the next one names what was refused
        reasons = [ln.strip().rstrip(".") for ln in text.split("\n\n")[1:] if ln.strip()
                   and not ln.startswith("Check the documentation")]
        detail = f" ({reasons[0]})" if reasons else ""
        return f"holds more than tensors and plain data{detail}; refused, since loading it could run code"
    return f"is truncated or corrupt ({type(exc).__name__}: {one_line(exc, 1)})"


def load_checkpoint(folder: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, dict, dict]:
    """``(model_state, train_state, meta)`` of one checkpoint folder; nothing is unpickled beyond plain data."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = _check(folder)
    if meta is None:
        raise CheckpointError(f"{folder} is not a complete srr checkpoint")
    try:
        model_state = load_file(folder / "model.safetensors", device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{folder / 'model.safetensors'} is not readable: {exc}") from None
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says what matters
            warnings.simplefilter("ignore")
            train_state = torch.load(folder / "state.pt", map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle raises many types; all mean the same to the user
        raise CheckpointError(f"{folder / 'state.pt'} {_refusal(exc)}") from None
    return model_state, train_state, meta
