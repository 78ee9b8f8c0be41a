"""CPU throughput (images/s) of the CIFAR-10-from-scratch recipe, on synthetic 32x32x3 uint8 images (no CIFAR here).

The whole recipe path runs: crate_tiny at patch 4, the recipe's optimiser and augmentations (random resized crop,
flip, RandAugment(2, 14)), batches standardised from uint8 by the DataLoader. fp32 and bf16 autocast alternate after
a warm-up; the line printed gives images/s of each and their ratio.

    PYTHONPATH=src python benchmarks/training_throughput.py [--steps 4] [--rounds 2] [--workers 0] [--out FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from srr.data.cifar import CIFAR10_STATS  # noqa: E402
from srr.data import ArrayImages, ImageData  # noqa: E402
from srr.models import create_model  # noqa: E402
from srr.objectives import get_objective  # noqa: E402
from srr.training import plan_training, train  # noqa: E402

RECIPE = "crate_cifar10_scratch"


def synthetic_cifar(n_train: int, n_test: int = 256) -> ImageData:
    rng = np.random.default_rng(0)
    mean, std = CIFAR10_STATS
    sets = [ArrayImages(rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n), mean, std)
            for n in (n_train, n_test)]
    return ImageData("synthetic-cifar10", "synthetic 32x32x3 uint8", *sets, 10, mean, std, (32, 32), 3)


def plan(precision: str = "fp32", steps: int = 1, workers: int = 0):
    """The recipe's settings (engine and objective) as ``srr train --recipe`` resolves them, for a short run."""
    return plan_training(recipe=RECIPE, settings={"precision": precision, "max_steps": steps, "workers": workers,
                                                  "checkpoint_every": 0, "tensorboard": False, "epochs": 1})


def one_run(precision: str, steps: int, workers: int) -> float:
    p = plan(precision, steps, workers)
    data = synthetic_cifar(p.train.batch_size * steps)
    torch.manual_seed(0)
    model = create_model(p.model, **{**data.model_overrides(), **p.recipe_args})
    objective = get_objective(p.objective)(p.objective_config, data)
    with contextlib.redirect_stdout(io.StringIO()):  # the engine's line per epoch: only the ratio line counts
        summary = train(model, objective, p.train, out_dir=None, progress=False)
    return summary["images_per_second"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "training_throughput.json"),
                   help="result file (default benchmarks/results/training_throughput.json)")
    args = p.parse_args(argv)
    one_run("fp32", 1, args.workers)  # warm-up
    results = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        for precision in results:
            results[precision].append(one_run(precision, args.steps, args.workers))
    best = {k: max(v) for k, v in results.items()}
    record = {"recipe": "crate_cifar10_scratch", "data": "synthetic 32x32x3 uint8 (no CIFAR on this machine)",
              "batch_size": plan().train.batch_size, "steps_per_run": args.steps,
              "workers": args.workers, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "images_per_second": results, "best": best, "bf16_over_fp32": best["bf16"] / best["fp32"],
              "torch": torch.__version__, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(args.out)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"crate_cifar10_scratch on CPU: fp32 {best['fp32']:.1f} img/s, bf16 {best['bf16']:.1f} img/s, "
          f"bf16/fp32 = {record['bf16_over_fp32']:.2f} (batch {record['batch_size']}, {args.steps} steps x "
          f"{args.rounds} rounds)")


if __name__ == "__main__":
    main()
