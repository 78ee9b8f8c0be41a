"""MSSA vs TSSA, one layer, N = 256 … 16,384 tokens: time and peak memory per N, log-log slopes (issues 3 and 7).

Contenders (same width, heads and batch 1):
  * ``mssa``: srr's MSSA (tied projection, fused ``scaled_dot_product_attention``), O(N²·d) time;
  * ``tssa``: srr's TSSA (token statistics), O(N·d) time and memory;
  * ``mssa_explicit``: the authors' formulation of MSSA (explicit softmax matrix), up to ``--explicit-max`` tokens
    only, to show the memory an N × N attention matrix costs.
Time: in one process, every contender after a warm-up, alternating within each repeat; the median of ``--repeats``
runs of the forward (no autograd) and of forward + backward (sum of squares as the loss).
Memory: in a fresh subprocess per contender and N, after a 64-token warm-up, the peak resident set during the pass
minus the resident set before it (:func:`srr.profiling.peak_rss_growth`: the kernel's high-water mark, reset before
each pass; glibc told to mmap every block ≥ 64 KiB so that freed tensors leave the resident set), for the forward
(no autograd) and for forward + backward; the input tensor is allocated before the pass and not counted.
Slopes: least-squares fits of log(time) and log(memory) against log(N), over all N and over N ≥ 2048 (where the
N-independent costs stop dominating). Writes ``benchmarks/results/attention_scaling.{json,png}`` and prints a line.

    PYTHONPATH=src python benchmarks/attention_scaling.py            # about 10 minutes on a busy 2-core CPU
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from srr.io import atomic_path, atomic_write_json  # noqa: E402
from srr.operators import MSSA, TSSA  # noqa: E402
from srr.profiling import MMAP_ENV  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def build(kind: str, dim: int, heads: int) -> torch.nn.Module:
    torch.manual_seed(0)
    layer = TSSA(dim, heads, dim // heads) if kind == "tssa" else MSSA(dim, heads, dim // heads)
    if kind == "mssa_explicit":
        layer.forward = lambda x: explicit_mssa(layer, x)
    return layer


def explicit_mssa(layer: MSSA, x: torch.Tensor) -> torch.Tensor:
    """The authors' formulation: softmax(w wᵀ/√p) as a (B, K, N, N) tensor, then times w, then ``to_out``."""
    w = layer.project(x)
    out = torch.softmax(w @ w.transpose(-2, -1) * layer.scale, dim=-1) @ w
    return layer.to_out(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


def run_once(layer, x, backward: bool) -> float:
    start = time.perf_counter()
    if backward:
        layer(x).square().mean().backward()
    else:
        with torch.no_grad():
            layer(x)
    return time.perf_counter() - start


MEMORY_SCRIPT = r"""
import json, sys, torch
sys.path.insert(0, {src!r}); sys.path.insert(0, {bench!r})
torch.set_num_threads({threads})
from attention_scaling import build
from srr.profiling import peak_rss_growth
layer = build({kind!r}, {dim}, {heads})
layer(torch.randn(1, 64, {dim}, requires_grad=True)).square().mean().backward()
x = torch.randn(1, {n}, {dim}, requires_grad=True)
with torch.no_grad():
    forward, _ = peak_rss_growth(lambda: layer(x))
train, _ = peak_rss_growth(lambda: layer(x).square().mean().backward())
print(json.dumps({{"forward": forward, "train": train}}))
"""


def measure_memory(kind: str, n: int, dim: int, heads: int, threads: int) -> dict:
    script = MEMORY_SCRIPT.format(src=str(ROOT / "src"), bench=str(ROOT / "benchmarks"), threads=threads, kind=kind,
                                  dim=dim, heads=heads, n=n)
    env = {**os.environ, **MMAP_ENV}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=1800, env=env)
    if result.returncode != 0:
        return {"forward": None, "train": None, "error": result.stderr.strip().splitlines()[-1][:200]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def slope(ns, values, min_n: int = 0) -> float | None:
    pts = [(n, v) for n, v in zip(ns, values) if v and n >= min_n]
    if len(pts) < 2:
        return None
    return float(np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--min-tokens", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=16384)
    ap.add_argument("--explicit-max", type=int, default=4096, help="largest N for the explicit-softmax MSSA")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (1: the CPU is shared)")
    ap.add_argument("--no-memory", action="store_true", help="skip the subprocess memory measurements")
    ap.add_argument("--out", default=str(RESULTS / "attention_scaling.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ns = [n for n in (2**k for k in range(6, 20)) if args.min_tokens <= n <= args.max_tokens]
    kinds = ["mssa", "tssa", "mssa_explicit"]
    layers = {k: build(k, args.dim, args.heads) for k in kinds}
    for k in kinds:  # warm-up: kernels, thread pools, allocator
        for backward in (False, True):
            run_once(layers[k], torch.randn(1, ns[0], args.dim, requires_grad=True), backward)
    rows = []
    for n in tqdm(ns, desc="tokens", unit="N"):
        x = torch.randn(1, n, args.dim, requires_grad=True)
        active = [k for k in kinds if k != "mssa_explicit" or n <= args.explicit_max]
        times = {(k, b): [] for k in active for b in (False, True)}
        for _ in range(args.repeats):
            for k in active:
                for b in (False, True):
                    times[(k, b)].append(run_once(layers[k], x, b))
                    x.grad = None
        row = {"tokens": n}
        for k in active:
            row[k] = {"forward_s": statistics.median(times[(k, False)]), "train_s": statistics.median(times[(k, True)])}
            if not args.no_memory:
                mem = measure_memory(k, n, args.dim, args.heads, args.threads)
                row[k].update({"forward_bytes": mem["forward"], "train_bytes": mem["train"]})
        rows.append(row)
    report = summarise(rows, args, ns)
    out = Path(args.out)
    atomic_write_json(out, report)
    plot(report, out.with_suffix(".png"))
    print(ratio_line(report))
    return report


def summarise(rows, args, ns) -> dict:
    series = lambda k, key: [r.get(k, {}).get(key) for r in rows]  # noqa: E731
    slopes = {}
    for k in ("mssa", "tssa", "mssa_explicit"):
        slopes[k] = {f"{key}_{rng}": slope(ns, series(k, key), lo) for key in ("forward_s", "train_s", "forward_bytes",
                                                                             "train_bytes")
                     for rng, lo in (("all", 0), ("ge2048", 2048))}
    last = rows[-1]
    speedup = {key: last["mssa"][key] / last["tssa"][key] for key in ("forward_s", "train_s")}
    return {
        "benchmark": "attention_scaling",
        "config": {"dim": args.dim, "heads": args.heads, "dim_head": args.dim // args.heads, "batch": 1,
                   "repeats": args.repeats, "threads": args.threads, "torch": torch.__version__,
                   "explicit_max": args.explicit_max, "cpu_count": os.cpu_count()},
        "rows": rows,
        "slopes": slopes,
        "tssa_speedup_at_max_tokens": {"tokens": last["tokens"], **speedup},
    }


def ratio_line(report: dict) -> str:
    s, sp = report["slopes"], report["tssa_speedup_at_max_tokens"]
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    return (f"attention scaling (d={report['config']['dim']}, {report['config']['heads']} heads, "
            f"{report['config']['threads']} thread(s)): time slope N>=2048 forward MSSA {fmt(s['mssa']['forward_s_ge2048'])}"
            f" / TSSA {fmt(s['tssa']['forward_s_ge2048'])}, forward+backward MSSA {fmt(s['mssa']['train_s_ge2048'])} /"
            f" TSSA {fmt(s['tssa']['train_s_ge2048'])}; memory slope (train, N>=2048) MSSA "
            f"{fmt(s['mssa']['train_bytes_ge2048'])} / TSSA {fmt(s['tssa']['train_bytes_ge2048'])} / explicit MSSA "
            f"{fmt(s['mssa_explicit']['train_bytes_all'])}; at N={sp['tokens']} TSSA is {sp['forward_s']:.1f}x faster "
            f"forward and {sp['train_s']:.1f}x forward+backward")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, style, color in (("mssa", "o-", "C0"), ("tssa", "s-", "C1"), ("mssa_explicit", "^--", "C2")):
        pts = [(r["tokens"], r[k]) for r in report["rows"] if k in r]
        ns = [p[0] for p in pts]
        a1.plot(ns, [p[1]["forward_s"] for p in pts], style, color=color, label=f"{k} forward")
        a1.plot(ns, [p[1]["train_s"] for p in pts], style, color=color, alpha=0.4, label=f"{k} forward+backward")
        mem = [(n, p["train_bytes"]) for n, p in zip(ns, (q[1] for q in pts)) if p.get("train_bytes")]
        if mem:
            a2.plot([m[0] for m in mem], [m[1] / 2**20 for m in mem], style, color=color, label=f"{k} (forward+backward)")
    for ax, label in ((a1, "seconds"), (a2, "peak RSS growth (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("tokens N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    a1.set_title("one attention layer, batch 1")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
