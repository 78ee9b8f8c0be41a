"""Inference throughput: srr's CRATE vs the authors' formulation (same weights) vs srr's ViT of equal parameters.

    python benchmarks/inference.py [--rounds 15] [--batches 1 256] [--compile]

Forward passes under ``torch.inference_mode`` in eval mode on 32×32 RGB images (CRATE-Tiny width, see
``contenders.py``), at each batch size. The logits of srr's CRATE and of the authors' formulation are checked equal
(relative 1e-5) first. Reports images/s (median over alternating rounds), FLOPs per forward
(torch.utils.flop_counter), GFLOP/s over a 2048² float32 matrix-product peak measured in the same process, and peak
memory (high-water RSS increase of a fresh process over three forwards). Writes benchmarks/results/inference.json.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

import common
import contenders
from train_step import batch


def memory_child(name: str, n: int, compile_: bool) -> None:
    model = contenders.build(name).eval()
    if compile_:
        model = contenders.compiled(model)
    x, _ = batch(n)
    before = common.rss_mb()
    with torch.inference_mode():
        for _ in range(3):
            model(x)
    print(json.dumps({"rss_before_mb": before, "peak_increase_mb": common.max_rss_mb() - before}))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd srr CRATE and ViT")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--memory-child", nargs=3, metavar=("NAME", "BATCH", "COMPILE"), help=argparse.SUPPRESS)
    common.add_thread_option(p)
    args = p.parse_args(argv)
    common.apply_threads(args)
    if args.memory_child:
        name, n, comp = args.memory_child
        return memory_child(name, int(n), comp == "1")

    models = {n: contenders.build(n).eval() for n in contenders.NAMES}
    variants = [(n, n, False) for n in contenders.NAMES]
    if args.compile:
        variants += [("srr_crate_compiled", "srr_crate", True), ("srr_vit_compiled", "srr_vit", True)]
        for key, base, _ in variants[3:]:
            models[key] = contenders.compiled(contenders.build(base).eval())
    peak = common.matmul_peak()
    out, line = {}, []
    for n in args.batches:
        x, _ = batch(n)
        with torch.inference_mode():
            equal = common.max_rel_diff(models["srr_crate"](x), models["authors_crate"](x))
            if equal > 1e-5:
                raise SystemExit(f"srr and the authors' formulation differ by {equal:.3g} at batch {n}")
            flops = {key: common.count_flops(lambda m=models[base]: m(x)) for key, base, _ in variants}
            rounds = args.rounds if n > 16 else 5 * args.rounds
            times = common.time_side_by_side({key: (lambda m=models[key]: m(x)) for key, _, _ in variants},
                                             rounds, warmup=3)
        peak = max(peak, common.matmul_peak())  # the best of the measurements around the runs
        res = {}
        for key, base, comp in variants:
            t = times[key]["median_s"]
            res[key] = {"images_per_s": n / t, "forward_s": t, "flops": flops[key],
                        "gflops_per_s": flops[key] / t / 1e9,
                        "fraction_of_matmul_peak": flops[key] / t / 1e9 / peak, "times_s": times[key]["times_s"]}
            if not args.no_memory:
                res[key]["memory"] = common.peak_memory_in_child(__file__, base, str(n), "1" if comp else "0")
        ips = {k: v["images_per_s"] for k, v in res.items()}
        ratios = {"srr_crate/authors_crate": ips["srr_crate"] / ips["authors_crate"],
                  "srr_crate/srr_vit": ips["srr_crate"] / ips["srr_vit"]}
        if args.compile:
            ratios["srr_crate_compiled/srr_crate"] = ips["srr_crate_compiled"] / ips["srr_crate"]
        out[f"batch_{n}"] = {"equality_check_logits": equal, "results": res, "ratios": ratios}
        line.append(f"batch {n}: " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
                    + f" ({ips['srr_crate']:.1f} img/s)")
    config = {**contenders.CONFIG, "dim": 384, "depth": 12, "heads": 6, "vit": "vit_tiny: dim 192, depth 12, 3 heads"}
    memory = "fresh process per contender: VmHWM after 3 forwards minus VmRSS before (/proc/self/status)"
    path = common.write_result("inference", {"config": config, "matmul_peak_gflops_best_of_runs": peak,
                                             "memory_method": memory, **out})
    print("inference: " + " | ".join(line) + f" | peak {peak:.0f} GFLOP/s | {common.shown(path)}")


if __name__ == "__main__":
    sys.exit(main())
