"""Train-step throughput: srr's CRATE vs the authors' formulation (same weights) vs srr's ViT of equal parameters.

    python benchmarks/train_step.py [--rounds 15] [--batch 64] [--compile] [--profile]

One step = zero_grad, forward, cross-entropy, backward, AdamW step, on a fixed batch of 32×32 RGB images
(CRATE-Tiny width: dim 384, depth 12, 6 heads, patch 4, 10 classes). Before timing, srr's CRATE and the authors'
formulation are checked to give the same logits and the same gradients (relative difference ≤ 1e-5).
Reports images/s (median over alternating rounds), FLOPs per step (torch.utils.flop_counter: matrix products and
attention of forward and backward), achieved GFLOP/s over a 2048² float32 matrix-product peak measured in the same
process, and peak memory: the high-water RSS increase of a fresh process over three steps (params, gradients, AdamW
state and activations; RSS, not tracemalloc). ``--profile`` adds, per contender, the self CPU time of the
operators that take most of one step (torch.profiler, after the timed rounds). Writes
benchmarks/results/train_step.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys

import torch
import torch.nn.functional as F

import common
import contenders


def make_step(model, x, y, fused: bool = False):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused or None)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def fwd_bwd(model, x, y):
    def run():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
    return run


def _grads(model) -> torch.Tensor:
    named = dict(model.named_parameters())
    return torch.cat([named[k].grad.double().flatten() for k in sorted(named)])


def check_equal(a, b, x, y, tol=1e-5, grad_tol=1e-4) -> dict:
    """Logits of ``a`` and ``b`` agree to ``tol`` (max difference over the largest logit) and all their parameter
    gradients to ``grad_tol`` (relative Euclidean norm); the gradient distances to a float64 copy of ``a`` are reported
    too: float32 round-off through 12 layers alone moves gradients by about 1e-5."""
    ref = copy.deepcopy(a).double()
    out = {"logits": common.max_rel_diff(a(x), b(x))}
    for m, inp in ((a, x), (b, x), (ref, x.double())):
        fwd_bwd(m, inp, y)()
    ga, gb, gr = _grads(a), _grads(b), _grads(ref)
    rel = lambda u, v: float((u - v).norm() / v.norm())  # noqa: E731
    out.update(gradients=rel(ga, gb), srr_gradients_vs_float64=rel(ga, gr), authors_gradients_vs_float64=rel(gb, gr))
    a.zero_grad(set_to_none=True), b.zero_grad(set_to_none=True)
    if out["logits"] > tol or out["gradients"] > grad_tol:
        raise SystemExit(f"srr and the authors' formulation differ: {out}")
    return out


def profile_step(step, top: int = 12) -> dict[str, float]:
    """Self CPU milliseconds of the ``top`` costliest operators in one call of ``step``, and the total."""
    from torch.profiler import profile

    with profile() as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    out = {e.key: e.self_cpu_time_total / 1e3 for e in events[:top]}
    out["total"] = sum(e.self_cpu_time_total for e in events) / 1e3
    return out


def batch(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def memory_child(name: str, n: int, compile_: bool, fused: bool) -> None:
    model = contenders.build(name)
    if compile_:
        model = contenders.compiled(model)
    x, y = batch(n)
    step = make_step(model, x, y, fused)
    before = common.rss_mb()
    for _ in range(3):
        step()
    print(json.dumps({"rss_before_mb": before, "peak_increase_mb": common.max_rss_mb() - before}))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd srr CRATE and ViT")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--profile", action="store_true", help="also profile one step of each contender (top operators)")
    p.add_argument("--fused-adamw", action="store_true",
                   help="AdamW(fused=True) for every contender (default: plain AdamW, as srr's trainer)")
    p.add_argument("--memory-child", nargs=4, metavar=("NAME", "BATCH", "COMPILE", "FUSED"), help=argparse.SUPPRESS)
    common.add_thread_option(p)
    args = p.parse_args(argv)
    common.apply_threads(args)
    if args.memory_child:
        name, n, comp, fused = args.memory_child
        return memory_child(name, int(n), comp == "1", fused == "1")

    x, y = batch(args.batch)
    models = {n: contenders.build(n) for n in contenders.NAMES}
    equal = check_equal(models["srr_crate"], models["authors_crate"], x, y)
    variants = [(n, n, False) for n in contenders.NAMES]
    if args.compile:
        variants += [("srr_crate_compiled", "srr_crate", True), ("srr_vit_compiled", "srr_vit", True)]
        for key, base, _ in variants[3:]:
            models[key] = contenders.compiled(contenders.build(base))
            equal[f"{key}_logits"] = common.max_rel_diff(models[key](x), models[base](x))  # same seed, same weights
    flops = {key: common.count_flops(fwd_bwd(models[base], x, y)) for key, base, _ in variants if key == base}
    for key, base, _ in variants[3:]:
        flops[key] = flops[base]
    peak = common.matmul_peak()
    steps = {key: make_step(models[key], x, y, args.fused_adamw) for key, _, _ in variants}
    times = common.time_side_by_side(steps, args.rounds, warmup=2)
    peak_after = common.matmul_peak()
    peak_gflops = max(peak, peak_after)
    results = {}
    for key, base, comp in variants:
        t = times[key]["median_s"]
        results[key] = {
            "images_per_s": args.batch / t, "step_s": t, "step_times_s": times[key]["times_s"],
            "flops_per_step": flops[key], "gflops_per_s": flops[key] / t / 1e9,
            "fraction_of_matmul_peak": flops[key] / t / 1e9 / peak_gflops,
            "parameters": sum(q.numel() for q in models[base].parameters()),
        }
        if not args.no_memory:
            results[key]["memory"] = common.peak_memory_in_child(__file__, base, str(args.batch), "1" if comp else "0",
                                                                "1" if args.fused_adamw else "0")
        if args.profile:
            results[key]["profile_self_cpu_ms"] = profile_step(steps[key])
    ips = {k: v["images_per_s"] for k, v in results.items()}
    ratios = {"srr_crate/authors_crate": ips["srr_crate"] / ips["authors_crate"],
              "srr_crate/srr_vit": ips["srr_crate"] / ips["srr_vit"]}
    if args.compile:
        ratios["srr_crate_compiled/srr_crate"] = ips["srr_crate_compiled"] / ips["srr_crate"]
        ratios["srr_crate_compiled/srr_vit_compiled"] = ips["srr_crate_compiled"] / ips["srr_vit_compiled"]
    path = common.write_result("train_step", {
        "config": {**contenders.CONFIG, "batch": args.batch, "dim": 384, "depth": 12, "heads": 6,
                   "vit": "vit_tiny: dim 192, depth 12, 3 heads, mlp_ratio 4",
                   "optimizer": "AdamW(lr=1e-4" + (", fused=True)" if args.fused_adamw else ")")},
        "equality_check": equal, "matmul_peak_gflops": {"before": peak, "after": peak_after},
        "memory_method": "fresh process per contender: VmHWM after 3 steps minus VmRSS before the first step "
                         "(/proc/self/status)",
        "results": results, "ratios": ratios})
    frac = "  ".join(f"{k} {v['images_per_s']:.1f} img/s ({v['fraction_of_matmul_peak']:.0%} of peak)"
                     for k, v in results.items())
    print(f"train_step: " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()) + f" | {frac} | "
          f"peak {peak_gflops:.0f} GFLOP/s | {common.shown(path)}")


if __name__ == "__main__":
    sys.exit(main())
