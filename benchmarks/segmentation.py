"""Emergent segmentation: CRATE against a ViT of equal size, trained supervised (classification of the largest object)
and self-supervised (SimDINO), on scenes with exact object masks.

For each seed the four trainings run one after the other on the same scenes (``--data scenes:…``): CRATE and ViT
(the CRATE's width chosen so that its parameter count is closest to the ViT's; both read out their [CLS] token, patch
4), each with ``classification`` and with ``simdino``. Then ``srr segment``'s measurements on the first ``--images``
test scenes: the Jaccard index of the 60 %-mass attention masks of the last layer (best head, mean over heads) and
of the first-principal-component mask, in pixels and on the patch grid, and the fraction of outlier tokens
(norm > 3 × the layer's median) in the last layer, with the share of them on background patches. The task figure
is the test accuracy (supervised) or the weighted k-NN accuracy (SimDINO). A random initialisation of each model is
measured too (the chance level of the masks).

    python benchmarks/segmentation.py                                     # 3 seeds
    python benchmarks/segmentation.py --scenes n=400,test=100 --epochs 2 --seeds 1 --out-dir /tmp     # trial

Writes ``benchmarks/results/segmentation.json`` and prints a table and one line of ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_thread_option, apply_threads, write_result  # noqa: E402
from selfsup_compare import matched_width  # noqa: E402
from simdino_stability import mean_std  # noqa: E402
from srr.analysis.runs import Source  # noqa: E402
from srr.analysis.segmentation import segmentation_report  # noqa: E402
from srr.data import load_data  # noqa: E402
from srr.models import count_parameters, create_model  # noqa: E402
from srr.objectives import get_objective  # noqa: E402
from srr.training import TrainConfig, train  # noqa: E402


def measure(model, name: str, data, images: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        r = segmentation_report(Source(model, name, {}, "trained", "image"), data, Path(tmp) / "seg", images)
    last = r["token_norms"][-1]
    return {"jaccard_best": r["jaccard_best_head"], "jaccard_mean": r["jaccard_mean_over_heads"],
            "jaccard_pca": r["jaccard_pca"], "patch_jaccard_best": r["jaccard_best_head_patches"],
            "patch_jaccard_mean": r["jaccard_mean_over_heads_patches"], "patch_jaccard_pca": r["jaccard_pca_patches"],
            "outliers": last["outlier_fraction"],
            "outliers_on_background": last["outliers_on_background"],
            "background_fraction": last["background_fraction"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", default="n=3000,test=300", help="options of --data scenes")
    p.add_argument("--dim", type=int, default=32, help="the ViT's width")
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--images", type=int, default=128, help="test scenes measured")
    add_thread_option(p)
    args = p.parse_args(argv)
    apply_threads(args)
    data = load_data(f"scenes:{args.scenes}" if args.scenes else "scenes")
    base = {"depth": args.depth, "heads": args.heads, "patch_size": 4, "pool": "cls", "dim": args.dim}
    crate_dim, crate_params, vit_params = matched_width("vit_nano", "crate_nano", base, data)
    models = {"CRATE": ("crate_nano", {**base, "dim": crate_dim}), "ViT": ("vit_nano", base)}
    report = {"data": data.spec, "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seeds": args.seeds,
              "crate_dim": crate_dim, "crate_parameters": crate_params, "vit_parameters": vit_params, "runs": []}
    print(f"{data}; ViT width {args.dim}: {vit_params:,} parameters, CRATE width {crate_dim}: {crate_params:,}",
          flush=True)
    for seed in range(args.seeds):
        for training in ("random", "supervised", "simdino"):
            for family, (name, margs) in models.items():
                torch.manual_seed(seed)
                model = create_model(name, **{**data.model_overrides(), **margs})
                t = time.perf_counter()
                task = None
                if training != "random":
                    objective = "classification" if training == "supervised" else "simdino"
                    cls = get_objective(objective)
                    extra = {"head_hidden": 128, "head_dim": 64, "probe": False} if objective == "simdino" else {}
                    with contextlib.redirect_stdout(io.StringIO()):
                        s = train(model, cls(cls.Config(epochs=args.epochs, **extra), data),
                                  TrainConfig(batch_size=args.batch, lr=args.lr, seed=seed, device="cpu",
                                              tensorboard=False), progress=False, quiet=True)
                    task = s["test_accuracy"]
                row = {"family": family, "training": training, "seed": seed, "task": task,
                       "parameters": count_parameters(model), "seconds": time.perf_counter() - t,
                       **measure(model, name, data, args.images)}
                report["runs"].append(row)
                write_result("segmentation", report)
                shown = "" if task is None else f"task {task:.4f}, "
                print(f"{family:5s} {training:10s} seed {seed}: {shown}J best {row['jaccard_best']:.3f}, mean "
                      f"{row['jaccard_mean']:.3f}, PCA {row['jaccard_pca']:.3f}, outliers {row['outliers']:.2%} "
                      f"({row['seconds']:.0f} s)", flush=True)
    print("\n| model | training | task accuracy | Jaccard best head | Jaccard mean head | Jaccard PCA | "
          "patches: best head | patches: mean head | patches: PCA | outlier tokens (last layer) | "
          "outliers on background |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    table = {}
    for training in ("random", "supervised", "simdino"):
        for family in models:
            rows = [r for r in report["runs"] if r["family"] == family and r["training"] == training]
            cell = {}
            for key in ("task", "jaccard_best", "jaccard_mean", "jaccard_pca", "patch_jaccard_best",
                        "patch_jaccard_mean", "patch_jaccard_pca", "outliers"):
                values = [r[key] for r in rows if r[key] is not None]
                cell[key] = mean_std(values) if values else None
            bg = [r["outliers_on_background"] for r in rows if r["outliers_on_background"] is not None]
            cell["outliers_on_background"] = mean_std(bg) if bg else None
            table[f"{family}/{training}"] = cell

            def fmt(v, pct=False):
                if v is None:
                    return "n/a"
                return f"{v[0]:.2%} ± {v[1]:.2%}" if pct else f"{v[0]:.3f} ± {v[1]:.3f}"
            print(f"| {family} | {training} | {fmt(cell['task'])} | {fmt(cell['jaccard_best'])} | "
                  f"{fmt(cell['jaccard_mean'])} | {fmt(cell['jaccard_pca'])} | {fmt(cell['patch_jaccard_best'])} | "
                  f"{fmt(cell['patch_jaccard_mean'])} | {fmt(cell['patch_jaccard_pca'])} | "
                  f"{fmt(cell['outliers'], True)} | "
                  f"{fmt(cell['outliers_on_background'], True)} |")
    report["table"] = table
    path = write_result("segmentation", report)
    ratios = []
    for training in ("supervised", "simdino"):
        c, v = table[f"CRATE/{training}"]["jaccard_best"], table[f"ViT/{training}"]["jaccard_best"]
        ratios.append(f"{training} CRATE/ViT best-head Jaccard {c[0] / max(v[0], 1e-12):.3f}")
    print("; ".join(ratios) + f"  -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
