"""Atomic file writes: a temporary file in the same folder, flushed and fsynced, then renamed over the target.

A crash (even SIGKILL) at any point leaves either the old file or the complete new one, never a half-written file.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_path", "ensure_writable_dir",
           "append_jsonl", "read_structured", "umask_mode", "make_shared_dir"]


def umask_mode(directory: bool = False) -> int:
    """The mode a plain ``open`` / ``mkdir`` would give a new file (0o666) or folder (0o777) under the process's
    umask. ``tempfile.mkstemp`` and ``mkdtemp`` create 0o600 / 0o700 whatever the umask; files renamed from them are
    given this mode, so colleagues read a saved model as the user's umask allows."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def make_shared_dir(path: str | os.PathLike) -> Path:
    """Give a folder made by ``tempfile.mkdtemp`` (0o700) the mode the umask allows; returns it."""
    path = Path(path)
    os.chmod(path, umask_mode(directory=True))
    return path


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) and check that files can be written there; clear ``OSError`` otherwise."""
    from .errors import SrrError

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=p, prefix=".srr-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise SrrError(f"cannot write to output directory {p}: {exc.strerror or exc}") from None
    return p


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (hidden: ``.NAME.*.tmp``, or ``.tmp-NAME.*SUFFIX`` when a writer
    needs its own suffix — both are what leftover cleaning removes); on success it is fsynced and renamed onto
    ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}." if suffix == ".tmp" else f".tmp-{target.name}."
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, umask_mode())  # mkstemp's 0o600 (or a writer's own) would hide the file from the user's group
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike, obj) -> None:
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def append_jsonl(target: str | os.PathLike, obj) -> None:
    """Append one JSON object as a line and fsync (a line is either whole or, after a crash, ignorable)."""
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(obj) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_regular_file(path: str | os.PathLike, error: type | None = None) -> None:
    """Refuse a path that exists but is not a regular file (a named pipe, a device, a socket): reading a FIFO blocks
    for ever and a device has no end. A missing path is left to the caller, which names what it looked for."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        from .errors import DataError

        kind = ("a named pipe" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise (error or DataError)(f"{path} is {kind}; srr reads regular files only")


def read_structured(path: str | os.PathLike, what: str, error: type, max_bytes: int = 1 << 20,
                    toml: bool = False) -> dict:
    """A JSON (or TOML) file that srr reads as settings: at most ``max_bytes``, UTF-8, not nested beyond what the
    parser can follow, and a table at the top; any other content raises ``error`` in one line naming ``what``."""
    import sys

    path = Path(path)
    check_regular_file(path, error)
    size = path.stat().st_size
    if size > max_bytes:
        raise error(f"{path} is {size:,} bytes; {what} is at most {max_bytes:,}")
    if toml:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        parse, bad = tomllib.loads, (tomllib.TOMLDecodeError, UnicodeDecodeError)
    else:
        parse, bad = json.loads, (json.JSONDecodeError, UnicodeDecodeError)
    try:
        value = parse(path.read_text(encoding="utf-8"))
    except bad as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{path} is not valid {'TOML' if toml else 'JSON'}: {first}") from None
    except RecursionError:
        raise error(f"{path} is nested too deeply to be {what}") from None
    if not isinstance(value, dict):
        raise error(f"{path} does not describe {what} (it needs a table at the top)")
    return value
