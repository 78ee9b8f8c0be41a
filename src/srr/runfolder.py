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
           "check_output_folder", "clean_leftovers", "LOCK_NAME", "OUTPUT_MARKER", "ANALYSIS_FILES",
           "check_replaceable", "output_path"]

LOCK_NAME = ".srr.lock"
#: What srr writes into a run folder: a folder holding any of these holds srr output.
RUN_FILES = ("run.json", "config.json", "model.safetensors", "summary.json", "metrics.jsonl", "steps.jsonl",
             "curves.png", "training.png", "report.html", "checkpoints", "tensorboard", "analysis", "attention",
             "circuits", "ansatz", "evaluation", "layers.json", "layers.png", "rates.png", "similarity.png",
             "README.md", "results.json", "claims.md", "claims.html", "figures", "work", "segment")
#: Written into every folder :func:`publish_folder` publishes: a folder holding it is srr's own output, which a
#: later output of the same path may replace whole.
OUTPUT_MARKER = ".srr-output"
#: The files srr's analyses write into their folders (an output folder of an older srr, without the marker, that
#: holds only such files is still srr's own).
ANALYSIS_FILES = ("evaluation.json", "confusion.png", "layers.json", "layers.png", "compare.json", "compare.md",
                  "compare.png", "attention.json", "attention_grid.png", "attention_overlay.png", "synthetic.json",
                  "synthetic.png", "sparse_coding.json", "sparse_coding.png", "crate_ista.png", "denoise.json",
                  "mse.png", "rates.png", "sampler.png", "ansatz.json", "ansatz.png", "circuits.json", "qk.png",
                  "ov.png", "composition.png", "scores.png", "logit_lens.png", "segmentation.json",
                  "segmentation.png", "token_norms.png")
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
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target.parent, published_only=True)
    tmp = make_shared_dir(tempfile.mkdtemp(dir=target.parent, prefix=f".srr-new-{target.name}-{os.getpid()}-"))
    try:
        yield tmp
        (tmp / OUTPUT_MARKER).write_text("written by srr: a later srr output of this path may replace this folder\n")
        check_replaceable(target, {p.name for p in tmp.iterdir()})  # what appeared there while we worked
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


def output_path(value, flag: str = "--out") -> Path:
    """A path given on the command line for an output: an empty string (which ``Path`` reads as the working
    directory) is refused."""
    if value is None or not str(value).strip():
        raise RunFolderError(f"{flag} must name a folder or file, got an empty string")
    return Path(value)


def _ignorable(name: str) -> bool:
    return name in (LOCK_NAME, OUTPUT_MARKER) or name.startswith((".srr-", ".tmp-")) or name.endswith(".tmp")


def check_replaceable(target: str | os.PathLike, names: set[str] | frozenset = frozenset()) -> None:
    """``target`` may be replaced whole by a published output: it is absent, empty, srr's own output (it holds
    :data:`OUTPUT_MARKER`), or holds only regular files named as srr's analyses (or ``names``) name theirs. Anything
    else (a run's ``checkpoints``, the working directory, a folder of the user's files) is refused: replacing it
    would delete what it holds."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise RunFolderError(f"--out {target} is {'a link' if target.is_symlink() else 'a file'}, not a folder")
    try:
        entries = [e for e in os.scandir(target) if not _ignorable(e.name)]
        marked = (target / OUTPUT_MARKER).is_file()
    except OSError as exc:
        raise RunFolderError(f"cannot read --out {target}: {exc.strerror or exc}") from None
    held = [name for name in MODEL_FILES if (target / name).exists()]
    if held:  # a model's folder is never replaced by an output, whoever wrote it
        raise RunFolderError(f"--out {target} holds a model or run ({', '.join(held)}); write the output to a folder "
                             "of its own")
    if marked or not entries:
        return
    known = set(ANALYSIS_FILES) | set(names)
    foreign = sorted(e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries
                     if e.name not in known or not e.is_file(follow_symlinks=False))
    if foreign:
        shown = ", ".join(foreign[:4]) + (f", … ({len(foreign)} in all)" if len(foreign) > 4 else "")
        raise RunFolderError(f"--out {target} already holds files srr did not write there ({shown}); the output "
                             "replaces its folder whole, so choose a new or empty folder")


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
    if out is None or not str(out).strip():
        raise RunFolderError("--out must name a folder, got an empty string")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    _check_writable(out, str(out))
    resolved = out.resolve()
    if Path.cwd().resolve().is_relative_to(resolved):  # a published folder replaces its target whole
        raise RunFolderError(f"--out {out} is the working directory or one of its parents; write the output to a "
                             "folder of its own")
    for item in inputs:
        p = Path(item).resolve()
        if resolved == p or p.is_relative_to(resolved):
            raise RunFolderError(f"--out {out} would be written over the input {item}")
    held = [name for name in MODEL_FILES if (out / name).exists()]
    if held:
        raise RunFolderError(f"--out {out} holds a model or run ({', '.join(held)}); write the analysis to a folder "
                             "of its own")
    if out.name in ("checkpoints", "tensorboard") and any((out.parent / n).exists() for n in MODEL_FILES):
        raise RunFolderError(f"--out {out} is the run's own {out.name} folder; write the analysis to a folder of its "
                             "own")
    check_replaceable(out)
    return out


def check_output_file(out: str | os.PathLike, inputs: list[str | os.PathLike] = (), marker=None) -> Path:
    """An output file must not be an input, a run's own file or a file inside its checkpoints, nor an existing file
    that this command did not write: ``marker`` tells (bytes its own files contain near their start, or a function
    of the path); without it an existing file is never replaced."""
    if out is None or not str(out).strip():
        raise RunFolderError("--out must name a file, got an empty string")
    out = Path(out)
    if out.is_dir():
        raise RunFolderError(f"--out {out} is a folder, not a file")
    _check_writable(out.parent, str(out.parent))
    resolved = out.resolve()
    for item in inputs:
        if resolved == Path(item).resolve():
            raise RunFolderError(f"--out {out} is an input of this command; refusing to write over it")
    if out.name in MODEL_FILES or out.name in ("summary.json", "metrics.jsonl", "steps.jsonl"):
        raise RunFolderError(f"--out {out} would replace the run's own {out.name}")
    for parent in resolved.parents:  # nothing is written inside a run's checkpoints or logs
        if parent.name in ("checkpoints", "tensorboard") and any((parent.parent / n).exists() for n in MODEL_FILES):
            raise RunFolderError(f"--out {out} lies inside the run's own {parent.name} folder")
    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise RunFolderError(f"--out {out} exists and is not a regular file; refusing to replace it")
    if out.exists():
        if callable(marker):
            own = bool(marker(out))
        elif marker is not None:
            with open(out, "rb") as fh:
                own = marker in fh.read(4096)
        else:
            own = False
        if not own:
            raise RunFolderError(f"--out {out} exists and was not written by srr as this command's output; refusing "
                                 "to replace it (remove it or choose another name)")
    return out
