"""Exceptions that srr raises for problems a user can fix.

Every error the library raises on bad input derives from :class:`SrrError`, so the command-line interface can print
it as one line and exit non-zero, while genuine bugs still surface with a traceback. The subclasses also derive from
the built-in type a Python user would expect (``ValueError``, ``FileNotFoundError``) so that plain ``except`` clauses
keep working.
"""
from __future__ import annotations


class SrrError(Exception):
    """Base class of every user-facing srr error."""


class ConfigError(SrrError, ValueError):
    """A model name, override or option that cannot work."""


class DataError(SrrError, ValueError):
    """A data specification, file or tensor that cannot be read or does not fit."""


class NonFiniteError(SrrError, ValueError):
    """NaN or infinity where a finite number is required."""


class CheckpointError(SrrError, ValueError):
    """A checkpoint that is missing, corrupt, unsafe or of another architecture."""


class DataFileNotFoundError(SrrError, FileNotFoundError):
    """A file or folder named by the user does not exist."""


class ResourceError(SrrError, ValueError):
    """A size that the input or the machine cannot hold (checked before allocating)."""


class RunFolderError(SrrError, ValueError):
    """An output folder that belongs to another run, is in use, or would overwrite an input."""


def one_line(exc: BaseException, lines: int = 2, width: int = 300) -> str:
    """A third-party exception's message as one line for the CLI: its first ``lines`` non-empty lines joined with
    ``"; "`` (torch puts the useful detail on the second line of a state-dict error), cut at ``width`` characters."""
    parts = [ln.strip().rstrip(":") for ln in str(exc).splitlines() if ln.strip()][:lines]
    text = "; ".join(parts) or type(exc).__name__
    return text if len(text) <= width else text[: width - 1] + "…"
