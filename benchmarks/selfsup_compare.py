"""Self-supervised backbones side by side: SimDINO-CRATE, SimDINO-ViT and DINO-ViT of equal parameter count (and
unsupervised-MCR²-CRATE), against the k-NN accuracy of raw pixels.

The ViT has the given width; the CRATE's width is the multiple of the head count whose parameter count is closest to
the ViT's (CRATE ties its query, key and value and has no MLP, so it is wider at equal size). Every method is
pre-trained with the same epochs, batch, learning rate, views and head for each seed, from the seed's
initialisation; then the frozen backbone features are scored by weighted k-NN (k = 20, T = 0.07) and a linear probe
on the test split (the data's labels are used only there).

    python benchmarks/selfsup_compare.py                                   # MNIST subset, 3 seeds, 10 epochs
    python benchmarks/selfsup_compare.py --train 1000 --epochs 2 --out-dir /tmp        # trial

Writes ``benchmarks/results/selfsup_compare.json`` and prints a table and one line of ratios.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_thread_option, apply_threads, write_result  # noqa: E402
from simdino_stability import mean_std, pixel_knn, pretrain  # noqa: E402
from srr.data import load_data  # noqa: E402
from srr.models import count_parameters, create_model  # noqa: E402


def matched_width(vit: str, crate: str, args: dict, data) -> tuple[int, int, int]:
    """The CRATE width (a multiple of the heads) whose parameter count is closest to the ViT's; both counts."""
    overrides = data.model_overrides()
    target = count_parameters(create_model(vit, **{**overrides, **args}))
    heads = int(args.get("heads", 2))
    best = None
    for dim in range(heads, 8 * int(args.get("dim", 32)) + 1, heads):
        n = count_parameters(create_model(crate, **{**overrides, **args, "dim": dim}))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (dim, n)
    return best[0], best[1], target


def init_knn(model_name: str, margs: dict, data, seed: int) -> dict:
    """The weighted k-NN accuracy and collapse diagnostics of a model's features at its random initialisation."""
    from srr.analysis.classifiers import accuracy, weighted_knn
    from srr.analysis.features import collapse_diagnostics

    torch.manual_seed(seed)
    model = create_model(model_name, **{**data.model_overrides(), **margs}).eval()
    with torch.no_grad():
        z_train, z_test = model.features(data.x_train), model.features(data.x_test)
    d = collapse_diagnostics(z_test)
    return {"knn": accuracy(weighted_knn(z_train, data.y_train, z_test, 20, 0.07, data.num_classes), data.y_test),
            "effective_rank": d["effective_rank"], "mean_cosine": d["mean_cosine"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="idx:../shared/data/mnist")
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--dim", type=int, default=32, help="the ViT's width")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--patch", type=int, default=7)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--prototypes", type=int, default=256)
    p.add_argument("--no-mcr2", action="store_true", help="leave out unsupervised MCR² on CRATE")
    p.add_argument("--init-only", action="store_true", help="only the random initialisations' k-NN (no training; "
                                                            "writes selfsup_compare_init.json)")
    add_thread_option(p)
    args = p.parse_args(argv)
    apply_threads(args)
    data = load_data(args.data).first(args.train, args.test)
    base = {"depth": args.depth, "heads": args.heads, "patch_size": args.patch, "dim": args.dim}
    crate_dim, crate_params, vit_params = matched_width("vit_nano", "crate_nano", base, data)
    contenders = {"SimDINO-CRATE": ("simdino", "crate_nano", {**base, "dim": crate_dim}, {}),
                  "SimDINO-ViT": ("simdino", "vit_nano", base, {}),
                  "DINO-ViT": ("dino", "vit_nano", base, {"prototypes": args.prototypes})}
    if not args.no_mcr2:
        contenders["MCR2views-CRATE"] = ("mcr2_views", "crate_nano", {**base, "dim": crate_dim}, {})
    common = {"local_crops": 2, "head_hidden": 128, "head_dim": 64, "knn_bank": 0, "probe": True}
    report = {"data": data.spec, "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seeds": args.seeds,
              "common": common, "vit_parameters": vit_params, "crate_parameters": crate_params,
              "crate_dim": crate_dim, "pixel_knn": pixel_knn(data), "runs": []}
    print(f"ViT width {args.dim}: {vit_params:,} parameters; CRATE width {crate_dim}: {crate_params:,}; raw-pixel "
          f"k-NN {report['pixel_knn']:.4f}", flush=True)
    inits = {"CRATE": ("crate_nano", {**base, "dim": crate_dim}), "ViT": ("vit_nano", base)}
    report["random_init"] = {name: [init_knn(m, a, data, seed) for seed in range(args.seeds)]
                             for name, (m, a) in inits.items()}
    for name, rows in report["random_init"].items():
        k, ks = mean_std([r["knn"] for r in rows])
        print(f"random-init {name}: k-NN {k:.4f} ± {ks:.4f}", flush=True)
    if args.init_only:
        write_result("selfsup_compare_init", report)
        return 0
    for seed in range(args.seeds):
        for name, (objective, model, margs, extra) in contenders.items():  # side by side within each seed
            s = pretrain(objective, extra, model, margs, data, epochs=args.epochs, batch=args.batch, lr=args.lr,
                         seed=seed, common=common)
            row = {"contender": name, "seed": seed, "knn": s["test_knn"], "linear_probe": s["test_linear_probe"],
                   "effective_rank": s["test_effective_rank"], "mean_cosine": s["test_mean_cosine"],
                   "parameters": s["parameters"], "seconds": s["wall_seconds"]}
            report["runs"].append(row)
            write_result("selfsup_compare", report)
            print(f"{name:16s} seed {seed}: k-NN {row['knn']:.4f}, linear probe {row['linear_probe']:.4f} "
                  f"({row['seconds']:.0f} s)", flush=True)
    print("\n| contender | parameters | k-NN (mean ± std) | linear probe (mean ± std) | effective rank |")
    print("|---|---|---|---|---|")
    table = {}
    for name in contenders:
        rows = [r for r in report["runs"] if r["contender"] == name]
        k, ks = mean_std([r["knn"] for r in rows])
        lp, lps = mean_std([r["linear_probe"] for r in rows])
        er, _ = mean_std([r["effective_rank"] for r in rows])
        table[name] = {"knn_mean": k, "knn_std": ks, "probe_mean": lp, "probe_std": lps, "effective_rank": er}
        print(f"| {name} | {rows[0]['parameters']:,} | {k:.4f} ± {ks:.4f} | {lp:.4f} ± {lps:.4f} | {er:.2f} |")
    for name, rows in report["random_init"].items():
        k, ks = mean_std([r["knn"] for r in rows])
        print(f"| {name}, random initialisation | | {k:.4f} ± {ks:.4f} | | |")
    print(f"| raw pixels | 0 | {report['pixel_knn']:.4f} | | |")
    report["table"] = table
    path = write_result("selfsup_compare", report)
    print("k-NN / raw pixels: " + ", ".join(f"{n} {t['knn_mean'] / report['pixel_knn']:.3f}"
                                            for n, t in table.items()) + f"  -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
