"""Checks of the values that enter srr, in one place: numbers, integers, choices, tensors, labels and memory.

Every boundary (command-line flags, recipes, ``config.json``, data-file headers, the Python API) validates through
these functions, so that a bad value is refused where it enters with one line that names it, and nothing downstream
turns it into a plausible number. Sizes are compared with what the machine can hold *before* anything is allocated
(:func:`check_memory`).
"""
from __future__ import annotations

import math
import numbers
import os
import re
from typing import Any, Iterable

from .errors import ConfigError, DataError, NonFiniteError, ResourceError

__all__ = ["check_number", "check_int", "check_choice", "check_bool", "check_finite", "check_eps", "check_labels",
           "check_memory", "available_memory", "check_seed", "MAX_SEED", "check_finite_tree", "format_bytes",
           "MAX_INFERRED_CLASSES", "check_allocation",
           "check_dtype", "as_tensor", "check_memberships", "MEMORY_CHECK_FLOOR", "MEMBERSHIP_ROW_TOLERANCE"]

#: A class count inferred from the largest label may exceed the number of labelled samples only up to this floor.
MAX_INFERRED_CLASSES = 1024


def _name(name: str) -> str:
    return name or "value"


def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, error: type = ConfigError) -> float:
    """``value`` as a finite float within ``[low, high]`` (``(low, …`` with ``low_open``); refuses bools and strings."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{_name(name)} must be a number, got {value!r}")
    try:
        v = float(value)
    except (OverflowError, ValueError):
        raise error(f"{_name(name)} must be a finite number, got {value!r}") from None
    if not math.isfinite(v):
        raise error(f"{_name(name)} must be a finite number, got {v}")
    if low is not None and high is not None and (v < low or (low_open and v == low) or v > high
                                                 or (high_open and v == high)):
        raise error(f"{_name(name)} must lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
                    f", got {v:g}")
    if low is not None and (v < low or (low_open and v == low)):
        raise error(f"{_name(name)} must be {'>' if low_open else '>='} {low:g}, got {v:g}")
    if high is not None and (v > high or (high_open and v == high)):
        raise error(f"{_name(name)} must be {'<' if high_open else '<='} {high:g}, got {v:g}")
    return v


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None,
              error: type = ConfigError) -> int:
    """``value`` as an int within ``[low, high]``; a float is accepted only when integral (``3.0``), never ``3.7``."""
    if isinstance(value, bool):
        raise error(f"{_name(name)} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        v = int(value)
    else:
        raise error(f"{_name(name)} must be an integer, got {value!r}")
    if low is not None and high is not None and not low <= v <= high:
        raise error(f"{_name(name)} must lie in [{low}, {high}], got {v}")
    if low is not None and v < low:
        raise error(f"{_name(name)} must be >= {low}, got {v}")
    if high is not None and v > high:
        raise error(f"{_name(name)} must be <= {high}, got {v}")
    return v


#: The largest seed srr takes (torch's generators take a 64-bit seed; srr derives seeds by adding small offsets).
MAX_SEED = (1 << 63) - 1 - 1024


def check_seed(value: Any, name: str = "--seed") -> int:
    """A seed: an integer in [0, :data:`MAX_SEED`] (a seed of 10²³ would overflow torch's generator)."""
    return check_int(value, name, low=0, high=MAX_SEED)


def check_choice(value: Any, name: str, choices: Iterable[str], error: type = ConfigError) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise error(f"{_name(name)} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_bool(value: Any, name: str, error: type = ConfigError) -> bool:
    if not isinstance(value, bool):
        raise error(f"{_name(name)} must be true or false, got {value!r}")
    return value


def check_finite(x, name: str = "input") -> None:
    """Raise :class:`~srr.errors.NonFiniteError` (a ``ValueError``) if the tensor ``x`` holds NaN or ±inf; refuse
    anything that is not a real tensor (complex values would silently lose their imaginary part downstream)."""
    import torch

    if not torch.is_tensor(x):
        raise ConfigError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_complex():
        raise ConfigError(f"{name} is complex ({x.dtype}); srr's measures take real tensors")
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise NonFiniteError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")


def check_finite_tree(obj: Any, name: str = "report") -> Any:
    """Refuse a result (nested dicts, lists, numbers) holding NaN or ±inf, naming the first such entry: a report
    is never written or printed with a non-finite figure that could pass for a result. Returns ``obj``."""
    stack = [(name, obj)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise NonFiniteError(f"{where} is {value}: the computation did not give a finite result (see the "
                                 "settings' ranges in the documentation)")
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}", v) for k, v in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    return obj


def check_eps(eps: Any, name: str = "eps") -> float:
    """The distortion ε (not ε²): a finite positive number whose square neither underflows to 0 nor overflows, so
    that the scales d/(m ε²) of the coding rates are finite and positive."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not float(eps) > 0 or not math.isfinite(eps):
        raise ConfigError(f"{name} must be a finite positive number (it is ε, not ε²), got {eps!r}")
    v = float(eps)
    if v * v == 0.0 or not math.isfinite(1.0 / (v * v)) or not math.isfinite(v * v):
        raise ConfigError(f"{name} = {v:g} is out of range: ε² must be a normal positive float64 "
                          "(use 1e-100 < ε < 1e100; ε is not ε²)")
    return v


def check_labels(labels: Any, num_classes: int | None = None, *, name: str = "labels", count: int | None = None,
                 where: str = "", error: type = DataError):
    """Integer class labels as a 1-D int64 tensor, and the class count K.

    The labels must be a 1-D integer array or tensor (floats are refused, NaN included), of length ``count`` when
    given, non-negative and below ``num_classes`` when given. Without ``num_classes``, K is the largest label + 1,
    which may not exceed the number of labels (or :data:`MAX_INFERRED_CLASSES`, whichever is larger): one stray
    label of 2e9 would otherwise build a 2e9-way classifier. Returns ``(labels, K)``.
    """
    import numpy as np
    import torch

    prefix = f"{where}: " if where else ""
    if torch.is_tensor(labels) and labels.dtype in (torch.uint16, torch.uint32, torch.uint64):
        labels = labels.cpu().numpy()  # torch has no min/max for these; NumPy checks the range below
    if isinstance(labels, np.ndarray):
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
            raise error(f"{prefix}{name} must be integers, found {labels.dtype}")
        if labels.dtype.kind == "u" and labels.size and int(labels.max()) > np.iinfo(np.int64).max:
            raise error(f"{prefix}label {int(labels.max())} is beyond the int64 range; a corrupt label?")
        array = np.ascontiguousarray(labels).astype(np.int64, copy=False)
        labels = torch.from_numpy(array if array.flags.writeable else array.copy())  # torch warns on read-only
    elif not torch.is_tensor(labels):
        raise error(f"{prefix}{name} must be an integer tensor or array, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex():
        raise error(f"{prefix}{name} must be integers, found {labels.dtype}")
    if labels.dim() != 1:
        raise error(f"{prefix}{name} must be 1-D, found shape {tuple(labels.shape)}")
    if count is not None and labels.numel() != count:
        raise error(f"{prefix}{labels.numel()} {name} for {count} samples")
    labels = labels.long()
    low = int(labels.min()) if labels.numel() else 0
    high = int(labels.max()) if labels.numel() else -1
    if low < 0:
        raise error(f"{prefix}{name} must be non-negative, found {low}")
    if num_classes is not None:
        k = check_int(num_classes, "num_classes", low=1, error=error)
        if high >= k:
            raise error(f"{prefix}label {high} is out of range for {k} classes ({name} must lie in [0, {k}))")
        return labels, k
    k = high + 1
    limit = max(labels.numel(), MAX_INFERRED_CLASSES)
    if k > limit:
        raise error(f"{prefix}label {high} implies {k:,} classes for {labels.numel():,} samples (at most {limit:,} "
                    "classes are inferred from the labels); a corrupt label?")
    return labels, max(k, 1)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            match = re.search(r"^MemAvailable:\s+(\d+) kB", fh.read(), re.MULTILINE)
        return int(match.group(1)) * 1024 if match else None
    except OSError:
        return None


def _cgroup_available() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            return max(0, int(limit) - int(fh.read().strip()))
    except (OSError, ValueError):
        return None


def _address_space_available() -> int | None:
    """What ``ulimit -v`` (RLIMIT_AS) leaves of the address space, beyond what this process has mapped."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status", encoding="ascii") as fh:
            match = re.search(r"^VmSize:\s+(\d+) kB", fh.read(), re.MULTILINE)
        used = int(match.group(1)) * 1024 if match else 0
        return max(0, soft - used)
    except (OSError, ValueError, ImportError):
        return None


def available_memory(device=None) -> int | None:
    """Bytes that an allocation can still get: on a CUDA device its free memory; otherwise the least of the kernel's
    ``MemAvailable``, the cgroup's remaining limit and the remaining ``ulimit -v`` address space. ``None`` when
    unknown (not Linux), in which case size checks are skipped."""
    if device is not None and getattr(device, "type", str(device).split(":")[0]) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    known = [v for v in (_meminfo_available(), _cgroup_available(), _address_space_available()) if v is not None]
    override = os.environ.get("SRR_MEMORY_LIMIT")  # a smaller budget than the machine's, e.g. on a shared node
    if override:
        try:
            known.append(int(float(override)))
        except ValueError:
            raise ConfigError(f"SRR_MEMORY_LIMIT must be a number of bytes, got {override!r}") from None
    return min(known) if known else None


def check_memory(nbytes: float, what: str, device=None, fraction: float = 0.9) -> None:
    """Refuse, with one line naming ``what``, its size and the limit, an allocation of ``nbytes`` that exceeds
    ``fraction`` of :func:`available_memory`. Called *before* allocating."""
    if not math.isfinite(float(nbytes)):
        raise ResourceError(f"{what} has no finite size")
    free = available_memory(device)
    if free is not None and nbytes > fraction * free:
        raise ResourceError(f"{what} needs about {format_bytes(nbytes)}, more than the {format_bytes(fraction * free)} "
                            "this machine can give (available memory)")


#: Allocations below this size are not compared with the available memory: reading it costs about 50 µs, more than
#: the small computations that the measures run in a training loop, and such sizes fit any machine srr runs on.
MEMORY_CHECK_FLOOR = 64 << 20

#: Rows of a membership matrix must sum to one within this, plus K·u for K classes in a dtype of unit round-off u.
MEMBERSHIP_ROW_TOLERANCE = 1e-4


def check_allocation(nbytes: float, what, device=None) -> None:
    """:func:`check_memory` for an allocation of ``nbytes`` that is about to happen, skipped below
    :data:`MEMORY_CHECK_FLOOR` and on the ``meta`` device (which allocates nothing). ``what`` is the description, or
    a function that returns it (formatted only when the size is checked: hot paths pay no string formatting)."""
    if nbytes < MEMORY_CHECK_FLOOR or getattr(device, "type", None) == "meta":
        return
    check_memory(nbytes, what() if callable(what) else what, device)


def check_dtype(dtype: Any, name: str = "dtype", error: type = ConfigError):
    """A floating ``torch.dtype`` (real, not complex); refuses strings, ``float`` and integer dtypes."""
    import torch

    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise error(f"{_name(name)} must be a floating torch dtype such as torch.float64, got {dtype!r}")
    return dtype


def as_tensor(value: Any, name: str, error: type = ConfigError):
    """``value`` as a tensor: a tensor as it is, a NumPy array (copied when read-only, which torch would warn
    about) or a nested list of numbers; anything else (strings, objects, ragged lists) is refused with one line."""
    import numpy as np
    import torch

    if torch.is_tensor(value):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise error(f"{_name(name)} must hold numbers, found a NumPy array of {value.dtype}")
        return torch.from_numpy(value if value.flags.writeable and value.flags.aligned else value.copy())
    if isinstance(value, (list, tuple)):
        try:
            return torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            raise error(f"{_name(name)} must be a tensor or a (nested) list of numbers") from None
    raise error(f"{_name(name)} must be a tensor, got {type(value).__name__}")


def check_memberships(pi, *, name: str = "memberships", count: int | None = None, num_classes: int | None = None,
                      error: type = ConfigError) -> int:
    """Soft memberships Π (…, m, K): finite, non-negative, every row summing to one within
    ``MEMBERSHIP_ROW_TOLERANCE + K·u`` (u the unit round-off of Π's dtype; 1e-4 in float32 and float64 for a few
    classes). ``count`` is m when given; ``num_classes`` is K when given. Two passes over Π (its minimum and its
    row sums); a NaN or inf is named from the row sums. Returns K."""
    import torch

    if pi.dim() < 2:
        raise error(f"{name} must have shape (..., m, K), got {tuple(pi.shape)}")
    m, k = pi.shape[-2], pi.shape[-1]
    if count is not None and m != count:
        raise error(f"{name} have {m} rows for {count} samples")
    if num_classes is not None:
        n = check_int(num_classes, "num_classes", low=1, error=error)
        if k != n:
            raise error(f"{name} have {k} columns but num_classes={n}")
    if pi.numel() == 0:
        return k
    wide = torch.float32 if pi.dtype in (torch.float16, torch.bfloat16) else pi.dtype
    detached = pi.detach()
    # one host synchronisation: NaN propagates through both reductions, ±inf makes the deviation infinite
    worst, low = torch.stack([(detached.sum(-1, dtype=wide) - 1).abs().amax(), detached.amin().to(wide)]).tolist()
    if not (math.isfinite(worst) and math.isfinite(low)):
        check_finite(pi, name)
        raise NonFiniteError(f"{name} overflow when summed over the classes")
    if low < 0:
        raise error(f"{name} must be non-negative, found {low:.3g}")
    tol = MEMBERSHIP_ROW_TOLERANCE + k * torch.finfo(pi.dtype).eps
    if worst > tol:
        raise error(f"every row of {name} must sum to 1 (within {tol:.2g}); a row is off by {worst:.3g}")
    return k
