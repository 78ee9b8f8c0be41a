"""Shared helpers of the benchmarks: side-by-side timing, the matrix-product peak, FLOP counts, peak memory, JSON.

Timing protocol (the CPU is shared, so only ratios measured together mean anything): every contender is warmed up,
then the contenders run in turn, one call each per round, with the order rotated every round; each contender's time
is the median over the rounds. Ratios are ratios of those medians.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import (FlopCounterMode, register_flop_formula, sdpa_backward_flop_count,
                                      sdpa_flop_count)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT / "src"))

from srr.io import atomic_write_json  # noqa: E402

_aten = torch.ops.aten
# PyTorch's FLOP counter knows the CUDA attention kernels but not the CPU flash kernel that
# scaled_dot_product_attention dispatches to here; count it with the same formulas.
try:
    @register_flop_formula(_aten._scaled_dot_product_flash_attention_for_cpu)
    def _sdpa_cpu_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    @register_flop_formula(_aten._scaled_dot_product_flash_attention_for_cpu_backward)
    def _sdpa_cpu_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_backward_flop_count(grad_out, query, key, value)
except (AttributeError, RuntimeError):  # pragma: no cover - other torch versions
    pass


def add_thread_option(parser) -> None:
    """``--threads N``: intra-op threads (default: PyTorch's, one per core). On a shared, oversubscribed CPU every
    parallel region waits for its slowest thread; one thread then gives steadier numbers."""
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's)")
    parser.add_argument("--tag", default="", help="write results/<name>-<tag>.json instead of results/<name>.json")
    parser.add_argument("--out-dir", default=None,
                        help="folder of the result JSON (default benchmarks/results; e.g. /tmp for a trial run)")


_TAG = ""
_OUT_DIR: Path | None = None


def apply_threads(args) -> None:
    global _TAG, _OUT_DIR
    _TAG = args.tag
    _OUT_DIR = Path(args.out_dir) if getattr(args, "out_dir", None) else None
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the memory child processes


def time_side_by_side(contenders: dict[str, Callable[[], object]], rounds: int, warmup: int = 2,
                      progress: bool = True) -> dict[str, dict]:
    """Alternate the contenders after ``warmup`` calls each; returns per contender the median and all times (s)."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t0)
        if progress:
            line = "  ".join(f"{n} {statistics.median(times[n]) * 1e3:.1f}ms" for n in names)
            print(f"\r  round {r + 1}/{rounds}: {line}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return {n: {"median_s": statistics.median(t), "min_s": min(t), "times_s": t} for n, t in times.items()}


def matmul_peak(n: int = 2048, rounds: int = 7) -> float:
    """Measured float32 GFLOP/s of an n × n matrix product (median of ``rounds``), in this process."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    t = time_side_by_side({"mm": lambda: torch.mm(a, b, out=out)}, rounds, warmup=2, progress=False)
    return 2 * n**3 / t["mm"]["median_s"] / 1e9


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (matrix products and attention, as torch.utils.flop_counter counts them)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mb() -> float:
    """Current resident set size of this process in MiB (``VmRSS`` of /proc/self/status)."""
    return _status_mb("VmRSS")


def max_rss_mb() -> float:
    """High-water resident set size of this process in MiB (``VmHWM``: unlike ``ru_maxrss``, not inherited from the
    parent across fork and exec)."""
    return _status_mb("VmHWM")


def peak_memory_in_child(script: str, *args: str) -> dict:
    """Run ``script --memory-child ARGS`` in a fresh interpreter and return the JSON it prints on its last line.

    Peak memory is measured in a separate process per contender because the high-water mark never decreases: the child
    records its RSS before the measured work and its high-water RSS after, and reports the difference.
    """
    cmd = [sys.executable, script, "--memory-child", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine() -> dict:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
    }


def write_result(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` (or into ``--out-dir``) atomically, with the machine description and
    the command."""
    folder = _OUT_DIR or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{name}-{_TAG}.json" if _TAG else f"{name}.json")
    payload = {"benchmark": name, "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
               "time": time.strftime("%Y-%m-%d %H:%M:%S"), **payload}
    atomic_write_json(path, payload)
    return path


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (as the printed lines always gave it), else absolute."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a − b| / max(max |b|, tiny)``: the relative difference used by the equality checks."""
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
