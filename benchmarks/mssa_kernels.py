"""Is srr's MSSA on the fast attention path on this CPU? Fused ``scaled_dot_product_attention`` vs explicit softmax.

    python benchmarks/mssa_kernels.py [--rounds 15]

At the train-step shape (64 images, 6 heads, 65 tokens, head width 64) with the tied projection (Q = K = V = w):
forward, and forward + backward, of ``MSSA.mix`` (fused) vs the authors' explicit ``softmax(w wᵀ/√p) w``; the
profiler confirms which kernel the fused call dispatched to. Writes benchmarks/results/mssa_kernels.json.
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch.profiler import profile

import common
from srr.operators import MSSA


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    common.add_thread_option(p)
    args = p.parse_args(argv)
    common.apply_threads(args)
    torch.manual_seed(0)
    b, n, heads, dh = 64, 65, 6, 64
    mssa = MSSA(heads * dh, heads, dh)
    w = mssa.project(torch.randn(b, n, heads * dh)).detach()
    scale = dh**-0.5

    def fused(x):
        return torch.nn.functional.scaled_dot_product_attention(x, x, x, scale=scale)

    def explicit(x):
        return torch.softmax(x @ x.mT * scale, dim=-1) @ x

    def with_backward(fn):
        def run():
            x = w.clone().requires_grad_(True)
            fn(x).sum().backward()
        return run

    diff = common.max_rel_diff(fused(w), explicit(w.double()))
    with profile() as prof:
        with_backward(fused)()
    kernels = sorted({e.key for e in prof.key_averages() if "scaled_dot_product" in e.key})
    t = common.time_side_by_side({"fused_forward": lambda: fused(w), "explicit_forward": lambda: explicit(w),
                                  "fused_train": with_backward(fused), "explicit_train": with_backward(explicit)},
                                 args.rounds)
    med = {k: v["median_s"] for k, v in t.items()}
    ratios = {"explicit/fused forward": med["explicit_forward"] / med["fused_forward"],
              "explicit/fused forward+backward": med["explicit_train"] / med["fused_train"]}
    path = common.write_result("mssa_kernels", {"shape": [b, heads, n, dh], "max_rel_diff_vs_float64": diff,
                                                "kernels": kernels, "median_s": med, "ratios": ratios})
    print("mssa_kernels: " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
          + f" | kernels: {', '.join(kernels)} | {common.shown(path)}")


if __name__ == "__main__":
    sys.exit(main())
