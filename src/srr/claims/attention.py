"""Claims about attention operators: AoT's denoising rate, the linear cost of token-statistics attention."""
from __future__ import annotations

import math
import time

import torch

from .base import Measured, register_claim
from .common import shown

AOT = "Wang et al., Attention-Only Transformers via Unrolled Subspace Denoising (2025), the SNR theorem"
TOST = "Wu et al., Token Statistics Transformer: Linear-Time Attention via Variational Rate Reduction (ICLR 2025)"


@register_claim(
    "aot-snr", minutes=0.1,
    title="Each attention-only layer multiplies the tokens' SNR by at least (1 + ητ)", source=AOT,
    kind="shape",
    protocol={"tiny": {"k": 2, "d": 16, "rank": 2, "tokens": 32, "sets": 2, "noise": 0.5, "depth": 2, "eta": 0.5,
                       "tau": 0.05},
              "cpu": {"k": 4, "d": 32, "rank": 4, "tokens": 64, "sets": 8, "noise": 0.5, "depth": 5, "eta": 0.5,
                      "tau": 0.05},
              "paper": {"k": 8, "d": 128, "rank": 8, "tokens": 256, "sets": 32, "noise": 0.5, "depth": 10,
                        "eta": 0.5, "tau": 0.05}},
    published="each layer multiplies the tokens' SNR by (1 + ητ), stated as the bound "
              "SNR^ℓ ≥ (1 + ητ)·SNR^{ℓ−1} "
              "(noisy mixture of low-rank Gaussians, hard-thresholded softmax, threshold τ); tested here as the "
              "bound, the measured factor shown next to it",
    cpu="8 sets of 64 tokens from a mixture of 4 rank-4 subspaces in 32 dimensions (noise σ = 0.5), 5 attention-only "
        "layers with the true subspaces, η = 0.5, τ = 0.05 (predicted ratio 1.025); SNR = on-subspace over "
        "off-subspace energy of the tokens, per layer; a different draw per seed",
    paper="K = 8 rank-8 subspaces in 128 dimensions, 32 sets of 256 tokens, 10 layers",
    rule="a seed holds when the SNR ratio of every layer is at least 1 + ητ; the opposite when the SNR does not grow "
         "at any layer")
def aot_snr(ctx) -> Measured:
    from ..analysis.denoising import denoising_curves
    from ..data import token_sets

    p = ctx.params
    predicted = 1 + p["eta"] * p["tau"]

    def ratios(seed: int) -> dict:
        z, labels, bases, _ = token_sets(p["sets"], p["tokens"], p["k"], p["d"], p["rank"], p["noise"], seed)
        result = denoising_curves(z, labels, bases, p["depth"], p["eta"], p["tau"])
        rows = {name: [r["ratio"] for r in result["curves"][name][1:]] for name in ("aot_threshold", "aot_softmax")}
        snr = [r["snr"] for r in result["curves"]["aot_threshold"]]
        return {**rows, "snr": [s if math.isfinite(s) else None for s in snr]}

    runs = [ctx.step(f"aot/s{s}", lambda s=s: ratios(s)) for s in range(ctx.seeds)]
    per_seed = []
    for r in runs:
        vals = [v for v in r["aot_threshold"] if v is not None]
        per_seed.append(True if vals and all(v >= predicted for v in vals) else
                        False if vals and all(v <= 1 for v in vals) else None)
    if not all(any(v for v in r[arm]) for r in runs for arm in ("aot_threshold", "aot_softmax")):
        return Measured(per_seed, "the SNR is not defined at any layer (no off-subspace energy)", {"runs": runs})
    geo = lambda vals: math.exp(sum(math.log(v) for v in vals) / len(vals))  # noqa: E731
    thr = [geo([v for v in r["aot_threshold"] if v]) for r in runs]
    soft = [geo([v for v in r["aot_softmax"] if v]) for r in runs]
    lowest = min(v for r in runs for v in r["aot_threshold"] if v)
    figure = (f"SNR ratio per layer (geometric mean) {shown(thr, 4)} with the threshold, {shown(soft, 4)} with the "
              f"plain softmax; lowest single layer {lowest:.4f}; predicted ≥ {predicted:.4f}")
    first = runs[0]["snr"]
    return Measured(per_seed, figure, {"runs": runs, "predicted_ratio": predicted},
                    plot={"title": "SNR of the tokens through hard-thresholded AoT layers (seed 0)", "x": "layer",
                          "y": "SNR", "log": True,
                          "series": {"measured": [list(range(len(first))), first],
                                     "predicted (1 + ητ)^ℓ": [list(range(len(first))),
                                                               [first[0] * predicted ** ell
                                                                for ell in range(len(first))]]}})


def _slope(ns: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(n)."""
    xs, ys = [math.log(n) for n in ns], [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


@register_claim(
    "tssa-linear-cost", minutes=0.2, alone=True,
    title="Token-statistics attention (TSSA) costs time linear in the number of tokens, "
    "MSSA quadratic", source=TOST, kind="shape",
    protocol={"tiny": {"dim": 32, "heads": 2, "ns": [64, 128, 256], "batch": 1, "rounds": 2},
              "cpu": {"dim": 192, "heads": 3, "ns": [256, 512, 1024, 2048, 4096], "batch": 2, "rounds": 5},
              "paper": {"dim": 384, "heads": 6, "ns": [1024, 2048, 4096, 8192, 16384], "batch": 8, "rounds": 10}},
    published="TSSA's cost is O(N·d) per layer (no N × N matrix); MSSA's is O(N²·d)",
    cpu="one TSSA and one MSSA layer (dim 192, 3 heads) on a batch of 2 token sets of N = 256 … 4,096 tokens, "
        "forward pass, best of 5 rounds, one thread; slope of log time against log N; each seed repeats the "
        "timing",
    paper="dim 384, 6 heads, N = 1,024 … 16,384, batch 8, on the GPU if there is one",
    rule="a seed holds when TSSA's slope is below 1.25 and MSSA's exceeds TSSA's by more than 0.3; the opposite "
         "when TSSA's slope is not below MSSA's")
def tssa_linear_cost(ctx) -> Measured:
    from ..operators import MSSA, TSSA

    p = ctx.params
    device = torch.device("cuda" if ctx.scale == "paper" and torch.cuda.is_available() else "cpu")

    def timing(seed: int) -> dict:
        threads = torch.get_num_threads()
        if device.type == "cpu":
            torch.set_num_threads(1)
        try:
            torch.manual_seed(seed)
            head = p["dim"] // p["heads"]
            layers = {"tssa": TSSA(p["dim"], p["heads"], head), "mssa": MSSA(p["dim"], p["heads"], head)}
            out = {}
            for name, layer in layers.items():
                layer = layer.to(device).eval()
                times = []
                for n in p["ns"]:
                    x = torch.randn(p["batch"], n, p["dim"], device=device)
                    best = math.inf
                    with torch.no_grad():
                        layer(x)
                        for _ in range(p["rounds"]):
                            if device.type == "cuda":
                                torch.cuda.synchronize()
                            t = time.perf_counter()
                            layer(x)
                            if device.type == "cuda":
                                torch.cuda.synchronize()
                            best = min(best, time.perf_counter() - t)
                    times.append(best)
                out[name] = {"seconds": times, "slope": _slope(p["ns"], times)}
            return out
        finally:
            torch.set_num_threads(threads)

    runs = [ctx.step(f"cost/s{s}", lambda s=s: timing(s)) for s in range(ctx.seeds)]
    per_seed = []
    for r in runs:
        t, m = r["tssa"]["slope"], r["mssa"]["slope"]
        per_seed.append(True if t < 1.25 and m > t + 0.3 else False if t >= m else None)
    ratio = [r["mssa"]["seconds"][-1] / r["tssa"]["seconds"][-1] for r in runs]
    figure = (f"slope of log time against log N: TSSA {shown([r['tssa']['slope'] for r in runs], 2)}, MSSA "
              f"{shown([r['mssa']['slope'] for r in runs], 2)}; at N = {p['ns'][-1]:,} MSSA/TSSA time "
              f"{shown(ratio, 1)}")
    return Measured(per_seed, figure, {"runs": runs, "ns": p["ns"], "device": str(device)},
                    plot={"title": "forward time of one layer (seed 0)", "x": "tokens N", "y": "seconds",
                          "log": True, "logx": True,
                          "series": {name.upper(): [p["ns"], runs[0][name]["seconds"]] for name in ("tssa", "mssa")}})
