"""Label noise: MCR² against cross-entropy when a fraction of the training labels is replaced by random ones.

For every corruption ratio (default 0, 0.1, …, 0.5) the same registered encoder (default ``crate_nano``) is trained
from the same initialisation, once with cross-entropy on its head and once with MCR² on its L2-normalised pooled
features, both on the corrupted labels, with the same epochs, optimiser (AdamW, warm-up + cosine) and seed. Test
accuracy on the clean test split: the head's argmax for cross-entropy; nearest subspace and k-NN (fitted with the
corrupted training labels) for MCR²; the cross-entropy features are also scored by nearest subspace and k-NN.
The two losses run alternately, one after the other, for each ratio. One torch thread (the cores are shared).

    python benchmarks/label_noise.py                        # digits, crate_nano, 30 epochs
    python benchmarks/label_noise.py --data idx:../shared/data/mnist --model crate_micro --epochs 10

Writes ``benchmarks/results/label_noise_<data>.json`` (after every ratio) and prints a table and one line of ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from srr.analysis.classifiers import accuracy, knn, nearest_subspace  # noqa: E402
from srr.data import ImageData, corrupt_labels, load_data  # noqa: E402
from srr.io import atomic_write_json  # noqa: E402
from srr.models import create_model  # noqa: E402
from srr.objectives import Classification, ClassificationConfig, FeatureNet, MCR2Config, MCR2Objective  # noqa: E402
from srr.objectives.mcr2 import extract_features  # noqa: E402
from srr.training import TrainConfig, train  # noqa: E402


def with_labels(data: ImageData, y_train: torch.Tensor) -> ImageData:
    """``data`` with other training labels (the images, test split and standardisation unchanged)."""
    return ImageData.from_tensors(data.name, data.spec, data.x_train, y_train, data.x_test, data.y_test,
                                  data.num_classes, mean=data.mean, std=data.std)


def evaluate_features(model, data: ImageData, n_components: int = 10, k: int = 5) -> dict:
    """Test accuracy of nearest-subspace and k-NN classifiers fitted on the training features (with ``data``'s
    training labels): the L2-normalised representation the final linear classifier reads."""
    net = FeatureNet(model)
    ztr = extract_features(net, data.train_set, list(range(len(data.train_set))), "cpu")
    zte = extract_features(net, data.test_set, list(range(len(data.test_set))), "cpu")
    r = min(n_components, ztr.shape[1])
    return {"nearest_subspace": accuracy(nearest_subspace(ztr, data.y_train, zte, r, data.num_classes), data.y_test),
            "knn": accuracy(knn(ztr, data.y_train, zte, k, data.num_classes), data.y_test)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--model", default="crate_nano")
    p.add_argument("--ratios", default="0,0.1,0.2,0.3,0.4,0.5")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--ce-batch", type=int, default=64)
    p.add_argument("--mcr2-batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eps", type=float, default=math.sqrt(0.5), help="MCR² ε (not ε²)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_data(args.data)
    ratios = [float(r) for r in args.ratios.split(",")]
    out = Path(args.out or ROOT / "benchmarks" / "results" /
               f"label_noise_{re.sub(r'[^A-Za-z0-9]+', '_', args.data).strip('_')}.json")
    report = {"data": args.data, "model": args.model, "epochs": args.epochs, "train_samples": len(data.x_train),
              "test_samples": len(data.x_test), "ce_batch": args.ce_batch, "mcr2_batch": args.mcr2_batch,
              "lr": args.lr, "mcr2_eps": args.eps, "mcr2_gamma": [1.0, 1.0], "seed": args.seed,
              "threads": args.threads, "rows": []}
    for ratio in ratios:
        noisy = corrupt_labels(data.y_train, ratio, data.num_classes, seed=args.seed + 10)
        d = with_labels(data, noisy)
        row = {"ratio": ratio, "wrong_fraction": float((noisy != data.y_train).double().mean())}
        torch.manual_seed(args.seed)
        model = create_model(args.model, **data.model_overrides())
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the engine's line per epoch: only the rows count
            ce = train(model, Classification(ClassificationConfig(epochs=args.epochs), d),
                       TrainConfig(batch_size=args.ce_batch, lr=args.lr, seed=args.seed, device="cpu"), progress=False)
        feats = evaluate_features(model, d)
        row.update(ce_head=ce["test_accuracy"], ce_nearest_subspace=feats["nearest_subspace"], ce_knn=feats["knn"],
                   ce_seconds=time.perf_counter() - t)
        torch.manual_seed(args.seed)
        model = create_model(args.model, **data.model_overrides())
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            mc = train(model, MCR2Objective(MCR2Config(epochs=args.epochs, eps=args.eps, eval_every=args.epochs), d),
                       TrainConfig(batch_size=args.mcr2_batch, lr=args.lr, seed=args.seed, device="cpu"),
                       progress=False)
        row.update(mcr2_nearest_subspace=mc["test_nearest_subspace"], mcr2_knn=mc["test_knn"],
                   mcr2_train_delta_R=mc["train_delta_R"], mcr2_seconds=time.perf_counter() - t)
        report["rows"].append(row)
        atomic_write_json(out, report)
        print(f"ratio {ratio:.1f} (wrong {row['wrong_fraction']:.3f}): CE head {row['ce_head']:.4f}, "
              f"CE NS {row['ce_nearest_subspace']:.4f}, MCR² NS {row['mcr2_nearest_subspace']:.4f}, "
              f"MCR² kNN {row['mcr2_knn']:.4f}  ({row['ce_seconds']:.0f} s / {row['mcr2_seconds']:.0f} s)",
              flush=True)
    print("\n| ratio | wrong | CE (head) | CE feat. NS | CE feat. kNN | MCR² NS | MCR² kNN |")
    print("|---|---|---|---|---|---|---|")
    for r in report["rows"]:
        print(f"| {r['ratio']:.1f} | {r['wrong_fraction']:.3f} | {r['ce_head']:.4f} | {r['ce_nearest_subspace']:.4f} "
              f"| {r['ce_knn']:.4f} | {r['mcr2_nearest_subspace']:.4f} | {r['mcr2_knn']:.4f} |")
    print("MCR² NS / CE head accuracy: " + ", ".join(
        f"{r['ratio']:.1f}: {r['mcr2_nearest_subspace'] / r['ce_head']:.3f}" for r in report["rows"]) + f"  -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
