"""Rate measures: srr vs the PyPI ``mcr2`` package and vs the Gram-product floor; token-set compression vs the
authors' batched N × N ``torch.logdet``.

    python benchmarks/measures.py [--rounds 21] [--token-rounds 7]

1. m = 4096 samples, d = 128, K = 10 classes, float32, ε = 0.5, rows L2-normalised: ``srr.coding_rate`` vs
   ``mcr2.primitives.coding_rate.R`` and ``srr.rate_reduction`` vs ``DeltaR``; the floor is one Gram product
   ``ZᵀZ`` (m·d² multiply-adds: every method needs at least that much).
2. Token-set compression of 64 images × 12 layers × 6 heads × 65 tokens × 64 dims (the per-head coordinates
   W_k = Z U_k of CRATE-Tiny at 32×32 / patch 4), tokens L2-normalised per head, ε² = 0.01 (ε = 0.1):
   ``½ Σ_k logdet(I + p/(N ε²) W_kᵀW_k)`` by ``srr.coding_rate(W, normalize=True)`` (Cholesky on the p × p side) vs the authors' way, one batched
   ``torch.logdet(I + p/(N ε²) W_k W_kᵀ)`` on the N × N side. A second row starts from the tokens (64 × 12 × 65 ×
   384) and the 12 layers' subspaces: ``srr.subspace_compression(Z, U, normalize=True)`` vs projection + the same.
Every pair is checked equal (relative 1e-5) before timing. Writes benchmarks/results/measures.json.
"""
from __future__ import annotations

import argparse
import math
import sys

import torch
import torch.nn.functional as F

import common
import srr


def authors_token_compression(w: torch.Tensor, eps: float) -> torch.Tensor:
    """The authors' measurement: normalise each token per head, one batched N × N logdet, ½ Σ over heads."""
    n, p = w.shape[-2], w.shape[-1]
    w = F.normalize(w, dim=-1)
    eye = torch.eye(n, dtype=w.dtype)
    return 0.5 * torch.logdet(eye + p / (n * eps**2) * (w @ w.mT)).sum(-1)


def check(name: str, ours: torch.Tensor, theirs: torch.Tensor, tol: float = 1e-5) -> float:
    diff = common.max_rel_diff(ours, theirs)
    if diff > tol:
        raise SystemExit(f"{name}: srr and the reference differ by {diff:.3g} (relative)")
    return diff


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--token-rounds", type=int, default=7)
    common.add_thread_option(p)
    args = p.parse_args(argv)
    common.apply_threads(args)
    try:
        from mcr2.primitives.coding_rate import DeltaR, R
    except ImportError:
        raise SystemExit("the mcr2 package is needed: pip install -e '.[bench]'") from None

    g = torch.Generator().manual_seed(0)
    m, d, k, eps = 4096, 128, 10, 0.5
    z = F.normalize(torch.randn(m, d, generator=g), dim=1)
    y = torch.randint(0, k, (m,), generator=g)
    onehot = F.one_hot(y, k).float()
    equal = {"coding_rate": check("R", srr.coding_rate(z, eps), R(z, eps)),
             "rate_reduction": check("ΔR", srr.rate_reduction(z, y, eps), DeltaR(z, onehot, eps))}
    gram_out = torch.empty(d, d)
    t = common.time_side_by_side({
        "srr_coding_rate": lambda: srr.coding_rate(z, eps),
        "mcr2_R": lambda: R(z, eps),
        "srr_rate_reduction": lambda: srr.rate_reduction(z, y, eps),
        "mcr2_DeltaR": lambda: DeltaR(z, onehot, eps),
        "floor_gram": lambda: torch.mm(z.mT, z, out=gram_out),
    }, args.rounds, warmup=3)
    med = {n: v["median_s"] for n, v in t.items()}

    b, layers, heads, n, dim, dh, teps = 64, 12, 6, 65, 384, 64, 0.1
    w = torch.randn(b, layers, heads, n, dh, generator=g)
    tokens = torch.randn(b, layers, n, dim, generator=g)
    u = torch.randn(layers, heads, dim, dh, generator=g) / math.sqrt(dim)
    srr_w = lambda: srr.coding_rate(w, teps, normalize=True).sum(-1)  # noqa: E731
    authors_w = lambda: authors_token_compression(w, teps)  # noqa: E731
    srr_zu = lambda: srr.subspace_compression(tokens, u, teps, normalize=True)  # noqa: E731
    authors_zu = lambda: authors_token_compression(tokens.unsqueeze(-3) @ u, teps)  # noqa: E731
    equal["token_sets"] = check("token sets", srr_w(), authors_w())
    equal["token_sets_from_subspaces"] = check("token sets from subspaces", srr_zu(), authors_zu())
    t2 = common.time_side_by_side({"srr_token_sets": srr_w, "authors_token_sets": authors_w,
                                   "srr_subspace_compression": srr_zu, "authors_from_subspaces": authors_zu},
                                  args.token_rounds, warmup=1)
    med.update({n: v["median_s"] for n, v in t2.items()})
    ratios = {
        "mcr2_R/srr_coding_rate": med["mcr2_R"] / med["srr_coding_rate"],
        "mcr2_DeltaR/srr_rate_reduction": med["mcr2_DeltaR"] / med["srr_rate_reduction"],
        "srr_coding_rate/floor": med["srr_coding_rate"] / med["floor_gram"],
        "srr_rate_reduction/floor": med["srr_rate_reduction"] / med["floor_gram"],
        "authors/srr_token_sets": med["authors_token_sets"] / med["srr_token_sets"],
        "authors/srr_subspace_compression": med["authors_from_subspaces"] / med["srr_subspace_compression"],
    }
    path = common.write_result("measures", {
        "config": {"rates": {"m": m, "d": d, "K": k, "eps": eps, "dtype": "float32"},
                   "token_sets": {"images": b, "layers": layers, "heads": heads, "tokens": n, "head_dim": dh,
                                  "token_dim": dim, "eps": teps, "normalize": True}},
        "equality_check_max_rel_diff": equal, "median_s": med,
        "times_s": {**{n: v["times_s"] for n, v in t.items()}, **{n: v["times_s"] for n, v in t2.items()}},
        "ratios": ratios})
    print("measures: " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()) + f" | {common.shown(path)}")


if __name__ == "__main__":
    sys.exit(main())
