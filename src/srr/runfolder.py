"""Run folders that belong to one run: a lock while in use, refusal of a folder holding another run, whole outputs.

The contract (``RELIABILITY.md`` states it for users):

* **One owner.** A training run holds an exclusive lock on ``DIR/.srr.lock`` (``flock``) for as long as it runs; a
  second process that wants the folder (another training, a resume) is refused at once, naming the holder's pid.
  Commands that only read a run and write analyses beside it take a shared lock, so they wait for no one but are
  refused while a training holds the folder.
* **No mixing.** A new run refuses a folder that already holds srr output (a model, a checkpoint, logs, analyses:
  :data:`RUN_FILES`) unless it is told to ``--overwrite`` it (then every such file is removed first, under the lock)
  or to ``--resume`` it. Files srr did not write are never touched.
* **Whole outputs.** A multi-file output (an analysis folder) is written into a hidden temporary folder and published
  by renames (:func:`publish_folder`); readers treat a missing or incomplete output as absent and compute it again.
  Leftovers of writes that were killed (``.*.tmp``, ``.tmp-*``, ``.srr-new-*``) are removed by the next owner.
* **Outputs never land on inputs** (:func:`check_output_file`, :func:`check_output_folder`).
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import RunFolderError
from .io import make_shared_dir

__all__ = ["RUN_FILES", "RunLock", "claim_run_folder", "holds_run", "publish_folder", "check_output_file",
           "check_output_folder", "clean_leftovers", "LOCK_NAME"]

LOCK_NAME = ".srr.lock"
#: What srr writes into a run folder: a folder holding any of these holds srr output.
RUN_FILES = ("run.json", "config.json", "model.safetensors", "summary.json", "metrics.jsonl", "steps.jsonl",
             "curves.png", "training.png", "report.html", "checkpoints", "tensorboard", "analysis", "attention",
             "circuits", "ansatz", "layers.json", "layers.png", "rates.png", "similarity.png", "README.md",
             "results.json", "claims.md", "claims.html", "figures", "work", "segment")
#: The files that make a folder a saved model or a training run (an input of the analysis commands).
MODEL_FILES = ("config.json", "model.safetensors", "run.json", "checkpoints")


class RunLock:
    """An ``flock`` on ``DIR/.srr.lock``: exclusive for a run that writes the folder, shared for readers."""

    def __init__(self, folder: str | os.PathLike, exclusive: bool = True):
        self.folder, self.exclusive, self.fd = Path(folder), exclusive, None

    def acquire(self) -> "RunLock":
        import fcntl

        path = self.folder / LOCK_NAME
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunFolderError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(self.fd)
            os.close(self.fd)
            self.fd = None
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                who = f" (pid {holder})" if holder else ""
                raise RunFolderError(f"{self.folder} is in use by another srr process{who}; wait for it to finish "
                                     "or use another --out") from None
            raise RunFolderError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
        if self.exclusive:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""


def holds_run(folder: str | os.PathLike) -> list[str]:
    """The srr outputs (:data:`RUN_FILES`) present in ``folder``."""
    folder = Path(folder)
    return [name for name in RUN_FILES if (folder / name).exists()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(folder: str | os.PathLike, published_only: bool = False) -> None:
    """Remove hidden temporary files and folders that an interrupted write left in ``folder``: every kind under an
    exclusive lock; with ``published_only`` (a shared lock: other readers may be writing) only the temporary
    folders of :func:`publish_folder` whose process has died."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        name = entry.name
        if not name.startswith("."):
            continue
        if name.startswith((".srr-new-", ".srr-old-")):
            pid = name.rsplit("-", 2)[-2] if name.count("-") >= 4 else ""
            if published_only and pid.isdigit() and _alive(int(pid)):
                continue
        elif published_only or not (name.endswith(".tmp") or name.startswith(".tmp-")):
            continue
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def claim_run_folder(folder: str | os.PathLike, *, resume: bool = False, overwrite: bool = False) -> RunLock:
    """Create (if needed) and lock ``folder`` for one run; returns the held lock.

    A new run refuses a folder with srr output unless ``overwrite`` (which removes that output first); ``resume``
    needs the run's ``run.json``.
    """
    if folder is None or not str(folder).strip():
        raise RunFolderError("--out must name a folder, got an empty string")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"cannot write to output directory {folder}: it is a file, not a folder")
    _check_writable(folder, str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot write to output directory {folder}: {exc.strerror or exc}") from None
    lock = RunLock(folder, exclusive=True).acquire()
    try:
        present = holds_run(folder)
        if resume:
            if not (folder / "run.json").is_file():
                raise RunFolderError(f"{folder} holds no run.json: not an srr training run to resume")
        elif present and not overwrite:
            raise RunFolderError(f"{folder} already holds another run ({', '.join(present[:4])}); pass --overwrite "
                                 "to replace it, --resume to continue it, or choose another --out")
        elif present:
            for name in present:
                path = folder / name
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        clean_leftovers(folder)
        _probe(folder)
    except BaseException:
        lock.release()
        raise
    return lock


def _probe(folder: Path) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".srr-probe-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise RunFolderError(f"cannot write to output directory {folder}: {exc.strerror or exc}") from None


@contextmanager
def publish_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``target``; when the block succeeds it replaces ``target`` whole
    (the old one renamed aside, the new one renamed in, the old one removed). A failure leaves ``target`` as it
    was; a crash leaves at most hidden leftovers that :func:`clean_leftovers` removes."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target.parent, published_only=True)
    tmp = make_shared_dir(tempfile.mkdtemp(dir=target.parent, prefix=f".srr-new-{target.name}-{os.getpid()}-"))
    try:
        yield tmp
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".srr-old-{target.name}-{os.getpid()}-"))
            os.rmdir(old)
            os.rename(target, old)
        os.rename(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_writable(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder this process may write into."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise RunFolderError(f"cannot write to output directory {what}: {probe} is a file")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot write to output directory {what}: Permission denied")


def check_output_folder(out: str | os.PathLike, inputs: list[str | os.PathLike] = ()) -> Path:
    """An analysis output folder must not be a run or model folder (it would be replaced whole) nor an input, and
    must be writable."""
    out = Path(out)
    if not str(out).strip():
        raise RunFolderError("--out must name a folder, got an empty string")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    _check_writable(out, str(out))
    resolved = out.resolve()
    for item in inputs:
        p = Path(item).resolve()
        if resolved == p or p.is_relative_to(resolved):
            raise RunFolderError(f"--out {out} would be written over the input {item}")
    held = [name for name in MODEL_FILES if (out / name).exists()]
    if held:
        raise RunFolderError(f"--out {out} holds a model or run ({', '.join(held)}); write the analysis to a folder "
                             "of its own")
    return out


def check_output_file(out: str | os.PathLike, inputs: list[str | os.PathLike] = (), marker: bytes | None = None) -> Path:
    """An output file must not be an input, nor an existing file that srr did not write (checked by ``marker``,
    bytes its own files contain near their start)."""
    out = Path(out)
    if not str(out).strip():
        raise RunFolderError("--out must name a file, got an empty string")
    if out.is_dir():
        raise RunFolderError(f"--out {out} is a folder, not a file")
    _check_writable(out.parent, str(out.parent))
    resolved = out.resolve()
    for item in inputs:
        if resolved == Path(item).resolve():
            raise RunFolderError(f"--out {out} is an input of this command; refusing to write over it")
    if out.name in MODEL_FILES or out.name in ("summary.json", "metrics.jsonl", "steps.jsonl"):
        raise RunFolderError(f"--out {out} would replace the run's own {out.name}")
    if out.exists() and marker is not None:
        with open(out, "rb") as fh:
            head = fh.read(4096)
        if marker not in head:
            raise RunFolderError(f"--out {out} exists and was not written by srr; refusing to replace it")
    return out
