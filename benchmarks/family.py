"""Every vision family member trained with the same budget, side by side (issue 3): a JSON result and a Markdown table.

Data: the ``nano`` sizes on digits (1,438 train / 359 test images, 8×8) and the ``micro`` sizes on the MNIST split
``idx:../shared/data/mnist`` (the 10,000 test-set images split 8,000 / 2,000 with a fixed seed, 28×28).
Budget, identical for every model of a data set: ``srr.training.train`` with one ``TrainConfig`` (AdamW, peak
learning rate ``--lr``, weight decay 0.05, batch ``--batch-size``, seed 0) and one ``Classification`` objective
(cross-entropy; linear warm-up for min(1, epochs/10) epochs then cosine, no augmentation) for ``--epochs-digits``
/ ``--epochs-mnist`` epochs (defaults 20 and 2: the whole run then takes about 30 minutes on the shared 2-core CPU).
Test accuracy is that of the last epoch.
Throughput (train images/s) is measured apart from training, side by side: after a warm-up step, every model runs
``--throughput-steps`` training steps on the same batch, models alternating, ``--throughput-rounds`` rounds; the
median over rounds. ``--threads`` intra-op threads (default 1: on a shared 2-core CPU two threads are slower).
Writes ``benchmarks/results/family.{json,md}`` and prints one line: the best white-box model against the ViT of
the same size on each data set.

    PYTHONPATH=src python benchmarks/family.py
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import srr  # noqa: E402
from srr.data import load_data  # noqa: E402
from srr.io import atomic_write_json, atomic_write_text  # noqa: E402
from srr.objectives import Classification, ClassificationConfig  # noqa: E402
from srr.training import TrainConfig, train  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FAMILY = ["vit", "crate", "crate_alpha", "crate_conceptual", "crate_negative", "crate_transpose", "tost", "aot"]
BASELINE = "vit"
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"


def throughput(names: list[str], data, batch_size: int, steps: int, rounds: int) -> dict[str, float]:
    """Train images/s of each model on one fixed batch, models alternating within each round; median of rounds."""
    x, y = data.x_train[:batch_size], data.y_train[:batch_size]
    states = {}
    for name in names:
        torch.manual_seed(0)
        model = srr.create_model(name, **data.model_overrides()).train()
        states[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))

    def step(name):
        model, opt = states[name]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for name in names:
        step(name)  # warm-up
    rates = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            start = time.perf_counter()
            for _ in range(steps):
                step(name)
            rates[name].append(steps * len(x) / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def run_dataset(label: str, spec: str, size: str, config: TrainConfig, objective: ClassificationConfig,
                args) -> dict:
    data = load_data(spec)
    names = [f"{f}_{size}" for f in FAMILY if not args.only or f in args.only]
    rows = []
    for name in tqdm(names, desc=f"{label}: train", unit="model"):
        torch.manual_seed(config.seed)
        model = srr.create_model(name, **data.model_overrides())
        with tempfile.TemporaryDirectory() as tmp:
            with contextlib.redirect_stdout(io.StringIO()):  # the engine's line per epoch: only the table counts
                summary = train(model, Classification(objective, data), config, tmp, progress=False)
            history = [json.loads(ln) for ln in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        rows.append({"model": name, "parameters": summary["parameters"], "test_accuracy": summary["test_accuracy"],
                     "test_loss": summary["test_loss"], "train_seconds": summary["seconds"],
                     "accuracy_by_epoch": [h["test_accuracy"] for h in history]})
    rates = throughput(names, data, config.batch_size, args.throughput_steps, args.throughput_rounds)
    for row in rows:
        row["train_images_per_s"] = rates[row["model"]]
    return {"label": label, "data": spec, "train_images": len(data.x_train), "test_images": len(data.x_test),
            "config": {**config.to_dict(), **objective.to_dict()}, "rows": rows, **compare(rows, size)}


def compare(rows: list[dict], size: str) -> dict:
    """The best white-box model against the ViT baseline of the same size."""
    by_name = {r["model"]: r for r in rows}
    base = by_name.get(f"{BASELINE}_{size}")
    white = [r for r in rows if not r["model"].startswith(BASELINE + "_")]
    if base is None or not white:
        return {}
    best = max(white, key=lambda r: r["test_accuracy"])
    gap = 100 * (base["test_accuracy"] - best["test_accuracy"])
    return {"baseline": base["model"], "best_white_box": best["model"], "gap_points": gap, "within_1_point": gap <= 1}


def markdown(report: dict) -> str:
    lines = []
    for ds in report["datasets"]:
        c = ds["config"]
        lines += [f"**{ds['label']}** (`--data {ds['data']}`, {ds['train_images']:,} train / {ds['test_images']:,} "
                  f"test images; {c['epochs']} epochs, batch {c['batch_size']}, AdamW lr {c['lr']:g}, "
                  f"wd {c['weight_decay']:g}, seed {c['seed']})", "",
                  "| model | parameters | train images/s | test accuracy |", "|---|---:|---:|---:|"]
        for r in sorted(ds["rows"], key=lambda r: -r["test_accuracy"]):
            lines.append(f"| `{r['model']}` | {r['parameters']:,} | {r['train_images_per_s']:.0f} | "
                         f"{100 * r['test_accuracy']:.2f} % |")
        if ds.get("baseline"):
            side = "behind" if ds["gap_points"] > 0 else "ahead of"
            lines += ["", f"Best white-box: `{ds['best_white_box']}`, {abs(ds['gap_points']):.2f} points {side} "
                          f"`{ds['baseline']}`."]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs-digits", type=int, default=20)
    ap.add_argument("--epochs-mnist", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--throughput-steps", type=int, default=5)
    ap.add_argument("--throughput-rounds", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=FAMILY, help="a subset of the family (default: all)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["digits", "mnist"])
    ap.add_argument("--out", default=str(RESULTS / "family.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    datasets = []
    common = dict(batch_size=args.batch_size, lr=args.lr, weight_decay=0.05, seed=0, device="cpu")
    config = TrainConfig(**common)

    def budget(epochs: int) -> tuple[TrainConfig, ClassificationConfig]:
        return config, ClassificationConfig(epochs=epochs, warmup_epochs=min(1.0, epochs / 10))

    if "digits" not in args.skip:
        datasets.append(run_dataset("digits, nano sizes", "digits", "nano", *budget(args.epochs_digits), args))
    if "mnist" not in args.skip:
        if (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
            datasets.append(run_dataset("MNIST split, micro sizes", "idx:../shared/data/mnist" if Path.cwd() == ROOT
                                        else f"idx:{MNIST_DIR}", "micro",
                                        *budget(args.epochs_mnist), args))
        else:
            print(f"MNIST not found at {MNIST_DIR}: skipped", file=sys.stderr)
    report = {"benchmark": "family", "threads": args.threads, "torch": torch.__version__,
              "seconds": time.perf_counter() - start, "datasets": datasets}
    out = Path(args.out)
    atomic_write_json(out, report)
    atomic_write_text(out.with_suffix(".md"), markdown(report))
    print(summary_line(report))
    return report


def summary_line(report: dict) -> str:
    parts = []
    for ds in report["datasets"]:
        rows = {r["model"]: r for r in ds["rows"]}
        if not ds.get("baseline"):
            continue
        best, base = rows[ds["best_white_box"]], rows[ds["baseline"]]
        parts.append(f"{ds['label']} ({ds['config']['epochs']} epochs): best white-box {best['model']} "
                     f"{100 * best['test_accuracy']:.2f} % vs {base['model']} {100 * base['test_accuracy']:.2f} % "
                     f"(gap {ds['gap_points']:+.2f} points), throughput ratio {best['train_images_per_s'] / base['train_images_per_s']:.2f}x")
    return "family: " + "; ".join(parts) + f" [{report['seconds'] / 60:.1f} min]"


if __name__ == "__main__":
    main()
