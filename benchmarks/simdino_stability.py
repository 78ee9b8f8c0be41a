"""Stability of self-supervised learning: SimDINO against DINO with and without its centring and sharpening.

Over a grid of learning rate × ε × global batch, on a subset of the MNIST split (``idx:../shared/data/mnist``; the
shared copy holds the 10,000 test images, split 80 / 20 with a fixed seed), the same backbone (default a ViT of
width 32, depth 2, patch 7) is pre-trained from the same initialisation per seed with

* ``simdino`` (no prototypes, centring or sharpening; coding-rate term with ε);
* ``dino`` (K prototypes, centring, τ_t = 0.04);
* ``dino_plain`` — DINO without centring and without sharpening (τ_t = τ_s), the set-up reported to collapse.

ε only enters SimDINO: the DINO runs are made once per (lr, batch) and shown in every ε row. Per cell and method:
the weighted k-NN accuracy (k = 20, T = 0.07) of the frozen backbone features, the collapse diagnostics of the test
features (effective rank, mean cosine similarity between images) and the collapse rate over the seeds, a run
counting as collapsed when the effective rank of its test features is below ``--collapse-rank`` (2) or their mean
cosine similarity above ``--collapse-cosine`` (0.95). The reference is the same k-NN on raw pixels.

    python benchmarks/simdino_stability.py                                  # 3 seeds, 2 x 2 x 2 grid, 3 epochs
    python benchmarks/simdino_stability.py --train 1000 --test 300 --epochs 2 --seeds 3 --out-dir /tmp   # trial

Writes ``benchmarks/results/simdino_stability.json`` (after every run) and prints a table and one line of ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_thread_option, apply_threads, write_result  # noqa: E402
from srr.analysis.classifiers import accuracy, weighted_knn  # noqa: E402
from srr.data import ImageData, load_data  # noqa: E402
from srr.models import count_parameters, create_model  # noqa: E402
from srr.objectives import get_objective  # noqa: E402
from srr.training import TrainConfig, train  # noqa: E402

METHODS = {"simdino": ("simdino", {}), "dino": ("dino", {}),
           "dino_plain": ("dino", {"centering": False, "sharpening": False})}


def pixel_knn(data: ImageData, k: int = 20, temperature: float = 0.07) -> float:
    """The weighted k-NN accuracy of the raw (standardised) pixels."""
    return accuracy(weighted_knn(data.x_train, data.y_train, data.x_test, k, temperature, data.num_classes),
                    data.y_test)


def pretrain(objective: str, extra: dict, model_name: str, model_args: dict, data: ImageData, *, epochs: int,
             batch: int, lr: float, seed: int, common: dict) -> dict:
    """One self-supervised run from the seed's initialisation; its summary (test figures of the last round)."""
    cls = get_objective(objective)
    config = cls.Config(epochs=epochs, **common, **extra)
    torch.manual_seed(seed)
    model = create_model(model_name, **{**data.model_overrides(), **model_args})
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        s = train(model, cls(config, data), TrainConfig(batch_size=batch, lr=lr, seed=seed, device="cpu",
                                                        tensorboard=False), progress=False, quiet=True)
    s["wall_seconds"] = time.perf_counter() - t
    s["parameters"] = count_parameters(model)
    return s


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(report: dict, rank: float, cosine: float) -> None:
    """The table of cells (mean ± std over seeds) and the line of ratios, a run counting as collapsed when its
    effective rank is below ``rank`` or its mean cosine above ``cosine``; written back into the result file."""
    runs = report["runs"]
    for r in runs:
        r["collapsed"] = r["effective_rank"] < rank or r["mean_cosine"] > cosine
    report["collapse_rule"] = f"effective rank < {rank} or mean cosine > {cosine}"
    lrs = sorted({r["lr"] for r in runs})
    batches = sorted({r["batch"] for r in runs})
    epss = sorted({r["eps"] for r in runs if r["eps"] is not None})
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    cells = []
    print(f"\ncollapsed: {report['collapse_rule']}")
    print("| lr | batch | ε | method | k-NN (mean ± std) | collapse rate | effective rank | mean cosine |")
    print("|---|---|---|---|---|---|---|---|")
    for lr in lrs:
        for batch in batches:
            for eps in epss:
                for method in methods:
                    rows = [r for r in runs if r["method"] == method and r["lr"] == lr and r["batch"] == batch
                            and (method != "simdino" or r["eps"] == eps)]
                    if not rows:
                        continue
                    knn_m, knn_s = mean_std([r["knn"] for r in rows])
                    rank_m, _ = mean_std([r["effective_rank"] for r in rows])
                    cos_m, _ = mean_std([r["mean_cosine"] for r in rows])
                    rate = sum(r["collapsed"] for r in rows) / len(rows)
                    cells.append({"lr": lr, "batch": batch, "eps": eps, "method": method, "knn_mean": knn_m,
                                  "knn_std": knn_s, "collapse_rate": rate, "effective_rank": rank_m,
                                  "mean_cosine": cos_m, "seeds": len(rows)})
                    shown_eps = f"{eps:.4g}" if method == "simdino" else "n/a"
                    print(f"| {lr:g} | {batch} | {shown_eps} | {method} | {knn_m:.4f} ± {knn_s:.4f} | {rate:.2f} | "
                          f"{rank_m:.2f} | {cos_m:.3f} |")
    report["cells"] = cells
    path = write_result("simdino_stability", report)
    overall = {m: mean_std([r["knn"] for r in runs if r["method"] == m])[0] for m in methods}
    collapse = {m: statistics.fmean([r["collapsed"] for r in runs if r["method"] == m]) for m in methods}
    print("k-NN / raw pixels: " + ", ".join(f"{m} {overall[m] / report['pixel_knn']:.3f}" for m in methods) +
          "; collapse rate: " + ", ".join(f"{m} {collapse[m]:.2f}" for m in methods) + f"  -> {path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="idx:../shared/data/mnist")
    p.add_argument("--train", type=int, default=2000, help="training images used")
    p.add_argument("--test", type=int, default=500, help="test images used")
    p.add_argument("--model", default="vit_nano")
    p.add_argument("--set", action="append", default=["dim=32", "depth=2", "heads=2", "patch_size=7"],
                   help="model setting KEY=VALUE (repeatable; replaces the defaults when given)")
    p.add_argument("--lrs", default="5e-4,2e-3")
    p.add_argument("--epss", default="0.2236,0.7071", help="SimDINO ε values (not ε²): √0.05 and √0.5")
    p.add_argument("--batches", default="64,256")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--local-crops", type=int, default=2)
    p.add_argument("--prototypes", type=int, default=256)
    p.add_argument("--collapse-rank", type=float, default=2.0)
    p.add_argument("--collapse-cosine", type=float, default=0.95)
    p.add_argument("--summarise", metavar="JSON", help="only print the table of a finished result file, with the "
                                                       "collapse thresholds given")
    add_thread_option(p)
    args = p.parse_args(argv)
    apply_threads(args)
    if args.summarise:
        import json

        summarise(json.loads(Path(args.summarise).read_text()), args.collapse_rank, args.collapse_cosine)
        return 0
    from srr.analysis.runs import parse_overrides

    defaults = ["dim=32", "depth=2", "heads=2", "patch_size=7"]
    model_args = parse_overrides(args.set[len(defaults):] or defaults)
    data = load_data(args.data).first(args.train, args.test)
    lrs, epss = [float(v) for v in args.lrs.split(",")], [float(v) for v in args.epss.split(",")]
    batches = [int(v) for v in args.batches.split(",")]
    common = {"local_crops": args.local_crops, "head_hidden": 128, "head_dim": 64, "knn_bank": 0, "probe": False}
    report = {"data": data.spec, "model": args.model, "model_args": model_args, "epochs": args.epochs,
              "seeds": args.seeds, "common": common, "prototypes": args.prototypes,
              "collapse_rule": f"effective rank < {args.collapse_rank} or mean cosine > {args.collapse_cosine}",
              "pixel_knn": pixel_knn(data), "runs": []}
    print(f"raw-pixel weighted k-NN: {report['pixel_knn']:.4f}", flush=True)

    def collapsed(s: dict) -> bool:
        return s["test_effective_rank"] < args.collapse_rank or s["test_mean_cosine"] > args.collapse_cosine

    for lr in lrs:
        for batch in batches:
            for method, (objective, extra) in METHODS.items():
                for eps in (epss if method == "simdino" else [None]):
                    for seed in range(args.seeds):
                        extra2 = dict(extra) if eps is None else {**extra, "eps": eps}
                        if objective == "dino":
                            extra2["prototypes"] = args.prototypes
                        s = pretrain(objective, extra2, args.model, model_args, data, epochs=args.epochs,
                                     batch=batch, lr=lr, seed=seed, common=common)
                        row = {"method": method, "lr": lr, "batch": batch, "eps": eps, "seed": seed,
                               "knn": s["test_knn"], "effective_rank": s["test_effective_rank"],
                               "mean_cosine": s["test_mean_cosine"], "coding_rate": s["test_coding_rate"],
                               "collapsed": collapsed(s), "seconds": s["wall_seconds"],
                               "parameters": s["parameters"]}
                        report["runs"].append(row)
                        write_result("simdino_stability", report)
                        print(f"{method:10s} lr {lr:g} batch {batch} eps {eps} seed {seed}: k-NN {row['knn']:.4f} "
                              f"rank {row['effective_rank']:.2f} cos {row['mean_cosine']:.3f}"
                              f"{' COLLAPSED' if row['collapsed'] else ''} ({row['seconds']:.0f} s)", flush=True)
    summarise(report, args.collapse_rank, args.collapse_cosine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
