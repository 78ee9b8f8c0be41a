"""How far ``srr.coding_rate`` is from the exact value, against the round-off bound the property tests allow.

Random inputs: m, d ∈ [1, 40), rank r ∈ [1, min(m, d)], scale 10^U(-8, 6), ε = 10^U(-3, 1), dtype float32, float16,
bfloat16 or float64 (a quarter each; half-precision inputs that overflow are skipped). Exact value: ``½ Σ log(1 +
a σᵢ²)`` from the float64 singular values of the (rounded) input, a = d/(m ε²). For each input and each compute
precision u (the input's: float32 for half input; and ``dtype=torch.float64``) the error is divided by
``u·(a·tr ZᵀZ + n + |R|)`` (n = m + d); the tests of ``tests/test_property_measures.py`` allow twice that.
Also counts, per precision, the errors above 1 and whether srr warned for each.

    PYTHONPATH=src python benchmarks/rate_precision.py [--inputs 20000] [--seed 0]

Writes ``benchmarks/results/rate_precision.json`` and prints one line of worst ratios.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import srr  # noqa: E402
from srr.io import atomic_write_json  # noqa: E402

DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def exact(z64: np.ndarray, a: float) -> float:
    return 0.5 * float(np.log1p(a * np.linalg.svd(z64, compute_uv=False) ** 2).sum())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inputs", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rate_precision.json"),
                   help="result file (default benchmarks/results/rate_precision.json)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(args.seed)
    uniform = lambda lo, hi: lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))  # noqa: E731
    stats = {name: {"inputs": 0, "worst_ratio": 0.0, "errors_above_1": 0, "warned_of_those": 0,
                    "worst_error_without_warning": 0.0} for name in ("native", "float64")}
    start = time.perf_counter()
    for i in range(args.inputs):
        m, d = (int(torch.randint(1, 40, (), generator=g)) for _ in range(2))
        r = int(torch.randint(1, min(m, d) + 1, (), generator=g))
        low = torch.randn(m, r, generator=g, dtype=torch.float64) @ torch.randn(r, d, generator=g, dtype=torch.float64)
        z = (low * 10 ** uniform(-8, 6) / r**0.5).to(DTYPES[i % 4])
        if not bool(torch.isfinite(z).all()):
            continue
        eps = 10 ** uniform(-3, 1)
        z64 = z.double().numpy()
        a = d / (m * eps**2)
        ref = exact(z64, a)
        for name, dtype in (("native", None), ("float64", torch.float64)):
            if name == "native" and z.dtype == torch.float64:
                continue  # the float64 input is the float64 case
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = float(srr.coding_rate(z, eps, dtype=dtype))
            u = torch.finfo(torch.float64 if (dtype or z.dtype) == torch.float64 else torch.float32).eps
            err = abs(got - ref)
            s = stats[name]
            s["inputs"] += 1
            s["worst_ratio"] = max(s["worst_ratio"], err / (u * (a * float((z64**2).sum()) + m + d + abs(ref))))
            warned = any(issubclass(w.category, RuntimeWarning) for w in caught)
            if err > 1:
                s["errors_above_1"] += 1
                s["warned_of_those"] += warned
            if not warned:
                s["worst_error_without_warning"] = max(s["worst_error_without_warning"], err)
    result = {"inputs": args.inputs, "seed": args.seed, "seconds": time.perf_counter() - start, "precisions": stats,
              "allowed_ratio_in_tests": 2.0, "torch": torch.__version__,
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(args.out)
    atomic_write_json(out, result)
    n, f = stats["native"], stats["float64"]
    print(f"worst error / u(a·tr G + n + |R|): float32 compute {n['worst_ratio']:.3f} ({n['inputs']} inputs), "
          f"float64 {f['worst_ratio']:.3f} ({f['inputs']}); errors > 1 warned: {n['warned_of_those']}/"
          f"{n['errors_above_1']} and {f['warned_of_those']}/{f['errors_above_1']} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
