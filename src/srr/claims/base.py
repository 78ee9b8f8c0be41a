"""Published claims as named experiments with a verdict: the registry and the verdict rules.

A claim is one statement of a paper of the family (``source``), the figure published for it (``published``), and an
experiment that measures the same quantity (``run(ctx)``, a :class:`Context`) at three scales, each a dictionary of
settings in ``protocol``: ``tiny`` (a smoke test of seconds, for the test suite: its verdicts mean nothing), ``cpu``
(what a 2-core machine runs in minutes) and ``paper`` (the paper's protocol, for a GPU and the paper's data). The
experiment returns one measured value per seed (or per seed and arm, for a claim that compares arms), and the claim's
``kind`` says how the verdict is reached (:func:`verdict`):

* ``value`` — a published number: **reproduced** when it lies inside the measured spread — mean ± 2 standard
  deviations over the seeds, at least ± ``tolerance``; for a claim measured once (one study of many models) the
  experiment's own 95 % interval (a bootstrap over the models), at least ± ``tolerance``; **contradicted** when the
  claim also states a sign (the published number's) and the whole spread lies on the opposite side of zero;
  otherwise **not reproduced at this scale**. A signed claim is reproduced only when its spread also excludes zero
  (an interval so wide that it admits no effect at all shows nothing);
* ``shape`` — a direction or an ordering without a number (a curve falls, an arm beats another): each seed gives
  True (the shape holds), False (the opposite holds) or None (neither, e.g. a tie); **reproduced** when it holds in
  every seed, **contradicted** when the opposite holds in every seed, otherwise **not reproduced at this scale**.

A claim may add conditions of its own (``Measured.also``: name → True/False, e.g. "μ_SRR ranks better than every
baseline"): any that is False turns a *reproduced* into *not reproduced at this scale*, and the row names it.

Where the claim depends on the scale (a figure of a 150-epoch ImageNet run), "not reproduced at this scale" says
exactly that: the CPU protocol did not show it, not that the paper is wrong.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ConfigError

__all__ = ["Claim", "Context", "register_claim", "get_claim", "list_claims", "verdict", "spread", "VERDICTS",
           "SCALES", "Measured"]

VERDICTS = ("reproduced", "not reproduced at this scale", "contradicted")
SCALES = ("tiny", "cpu", "paper")


@dataclass
class Measured:
    """What an experiment returns: per-seed values (numbers for ``value`` claims, True/False/None for ``shape``
    claims), the figure shown next to the published one, details for results.json, optionally the experiment's own
    interval ``(low, high)`` (a claim measured once) and a plot: ``{"title", "x", "y", "log": bool, "series":
    {label: [[x, …], [y, …]]}}`` (a line per series) drawn on the claims page."""

    per_seed: list
    figure: str
    details: dict = field(default_factory=dict)
    interval: tuple | None = None
    plot: dict | None = None
    also: dict = field(default_factory=dict)  # further conditions of "reproduced": name -> True/False


@dataclass
class Context:
    """What an experiment is given: the scale and its settings (``params``), the number of seeds, the data the user
    named (``data``: source name → spec, e.g. ``{"idx": "idx:/data/mnist"}``), a folder of its own for cached
    measurements, and ``notes`` it appends to (shown in the claim's row)."""

    claim: str
    scale: str
    params: dict
    seeds: int
    workdir: Path
    data: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    revision: int = 1
    used: dict = field(default_factory=dict)  # the data specs this experiment resolved (they key its cache)
    cached_cpu: float = 0.0  # CPU seconds that the measurements read back from the cache cost when they were made

    def data_spec(self, preferred: str, fallback: str | None = "digits") -> str:
        """The spec of the user's ``--data`` of source ``preferred``; without one, ``fallback`` (noted in the row) —
        except at the paper scale, where the paper's data is required."""
        if preferred in self.data:
            self.used[preferred] = self.data[preferred]
            return self.data[preferred]
        if fallback is None or self.scale == "paper":
            raise ConfigError(f"claim {self.claim} at --scale {self.scale} needs --data {preferred}:PATH")
        if preferred != fallback:
            self.notes.append(f"ran on {fallback}: pass --data {preferred}:PATH for the protocol's data")
        self.used[preferred] = fallback
        return fallback

    def digest(self, key: str) -> str:
        """What keys a cached measurement: its key, this scale's settings, the data the experiment resolved and the
        claim's revision (raised whenever the experiment's code changes what it measures)."""
        blob = json.dumps([key, self.params, self.used, self.revision], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def step(self, key: str, fn: Callable[[], dict]) -> dict:
        """``fn()`` (a JSON-able dict), cached in the work folder under ``key`` and this scale's settings: a measurement
        made once is read back by the next run (``--resume``) or by another claim that shares it."""
        from ..io import atomic_write_json, read_structured

        path = self.workdir / f"{key.replace('/', '-')}-{self.digest(key)}.json"
        if path.is_file():
            try:
                cached = read_structured(path, "a cached measurement", ConfigError)
                value = cached["value"]
                self.cached_cpu += float(cached.get("cpu_seconds", 0.0))
                return value
            except (ConfigError, KeyError, TypeError, ValueError):
                pass  # unreadable (a write killed half-way is impossible: atomic) → measured again
        import time

        start = time.process_time()
        value = fn()
        atomic_write_json(path, {"key": key, "value": value, "cpu_seconds": time.process_time() - start})
        return value


@dataclass(frozen=True)
class Claim:
    name: str
    title: str
    source: str
    published: str  # the published figure, as text
    kind: str  # "value" or "shape"
    run: Callable  # (ctx: Context) -> Measured
    protocol: dict  # scale -> settings (a dict the experiment reads), for every scale of SCALES
    cpu: str  # the CPU-scale protocol, in words
    paper: str  # the paper-scale protocol (for a GPU), in words
    seeds: dict  # scale -> default number of seeds
    value: float | None = None  # the published number, for "value" claims
    tolerance: float = 0.0
    signed: bool = False  # the published value's sign is part of the claim
    rule: str = ""  # what each seed's True/False means, for shape claims (shown in the docs and results)
    shares: str | None = None  # another claim whose cached measurements this one reads (they run in one worker)
    minutes: float = 1.0  # the measured time at --scale cpu on one idle core, for --list and for scheduling
    revision: int = 1  # raised when the experiment changes what it measures: cached measurements are then redone
    alone: bool = False  # a timing: run after the others, alone in the main process, so no worker disturbs it


_CLAIMS: dict[str, Claim] = {}


def register_claim(name: str, *, title: str, source: str, published: str, kind: str, protocol: dict, cpu: str,
                   paper: str, seeds: dict | None = None, value: float | None = None, tolerance: float = 0.0,
                   signed: bool = False, rule: str = "", shares: str | None = None,
                   minutes: float = 1.0, revision: int = 1, alone: bool = False):
    """Register the decorated function ``run(ctx) -> Measured`` as the claim ``name``."""
    if kind not in ("value", "shape"):
        raise ConfigError(f"a claim's kind is value or shape, got {kind!r}")
    if kind == "value" and value is None:
        raise ConfigError(f"claim {name}: a value claim needs the published value")
    if set(protocol) != set(SCALES):
        raise ConfigError(f"claim {name}: a protocol for each scale of {SCALES} is needed")
    seeds = {"tiny": 1, "cpu": 3, "paper": 3, **(seeds or {})}

    def wrap(fn):
        if name in _CLAIMS:
            raise ConfigError(f"claim {name!r} is already registered")
        _CLAIMS[name] = Claim(name, title, source, published, kind, fn, protocol, cpu, paper, seeds, value, tolerance,
                              signed, rule, shares, minutes, revision, alone)
        return fn

    return wrap


def get_claim(name: str) -> Claim:
    try:
        return _CLAIMS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_CLAIMS), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; `srr reproduce --list` lists them"
        raise ConfigError(f"unknown claim {name!r}{hint}") from None


def list_claims() -> list[str]:
    return list(_CLAIMS)


def spread(values: list[float], tolerance: float = 0.0, interval: tuple | None = None) -> tuple:
    """``(mean, std, low, high)``: the measured spread, mean ± max(2·std, tolerance) over the seeds; with one value
    and the experiment's own ``interval``, that interval widened to at least ± tolerance around the value."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    if len(values) == 1 and interval is not None:
        return mean, std, min(interval[0], mean - tolerance), max(interval[1], mean + tolerance)
    half = max(2 * std, tolerance)
    return mean, std, mean - half, mean + half


def verdict(claim: Claim, per_seed: list, interval: tuple | None = None, also: dict | None = None) -> str:
    """The verdict of the module docstring for the measured ``per_seed`` values (the experiment's interval, and
    its further conditions ``also``)."""
    found = _verdict(claim, per_seed, interval)
    if found == "reproduced" and also and not all(also.values()):
        return "not reproduced at this scale"
    return found


def _verdict(claim: Claim, per_seed: list, interval: tuple | None) -> str:
    if not per_seed:
        raise ConfigError(f"claim {claim.name}: no measurement")
    if claim.kind == "shape":
        if any(v is not True and v is not False and v is not None for v in per_seed):
            raise ConfigError(f"claim {claim.name}: a shape claim measures True, False or None per seed")
        if all(v is True for v in per_seed):
            return "reproduced"
        if all(v is False for v in per_seed):
            return "contradicted"
        return "not reproduced at this scale"
    if any(v is None or isinstance(v, bool) for v in per_seed):
        return "not reproduced at this scale"  # a seed without a value (e.g. τ of a constant sequence)
    values = [float(v) for v in per_seed]
    if not all(math.isfinite(v) for v in values):
        return "not reproduced at this scale"
    _, _, low, high = spread(values, claim.tolerance, interval)
    if low <= claim.value <= high and not (claim.signed and claim.value != 0 and low <= 0 <= high):
        return "reproduced"
    if claim.signed and claim.value != 0 and (high < 0 if claim.value > 0 else low > 0):
        return "contradicted"
    return "not reproduced at this scale"
