"""The feature ansatz and the tight-frame statistic per layer, for the reference MLP and for trained CRATE runs.

The MLP follows the reference setup of REFERENCE §9: bias-free ReLU MLP (``mlp_micro``: width 1024, 3 hidden layers)
trained with SGD (lr 0.1, batch 128) on the mean squared error to one-hot labels, on the MNIST split
(``idx:../shared/data/mnist``, 8,000 training images; ``mlp_nano`` on digits when MNIST is absent). The AGOP uses
1,000 training images. Any further ``--run DIR`` (e.g. a ``srr train`` folder of CRATE) is measured the same way.
Writes ``benchmarks/results/feature_ansatz.json`` and prints, per run and linear map, Pearson(WᵀW, AGOP^½) at
initialisation, after training and with W − W₀, the normalised tight-frame distance, λ_min/λ_max of G and
corr(G, WWᵀ); the last line gives the means over the maps after training.

``PYTHONPATH=src python benchmarks/feature_ansatz.py [--epochs 20] [--run runs/demo]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import srr
from srr.analysis import ansatz_report, open_source
from srr.data import load_data
from srr.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MNIST = ROOT.parent / "shared" / "data" / "mnist"


@torch.no_grad()
def accuracy_on(model, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(-1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def train_reference_mlp(out: Path, epochs: int, seed: int = 0) -> Path:
    """SGD (lr 0.1, batch 128, no momentum) on ½‖f(x) − onehot(y)‖² averaged over the batch; saves to ``out``."""
    spec, name = (f"idx:{MNIST}", "mlp_micro") if MNIST.is_dir() else ("digits", "mlp_nano")
    data = load_data(spec)
    torch.manual_seed(seed)
    model = srr.create_model(name, **data.model_overrides())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in tqdm(range(epochs), desc=f"{name} SGD+MSE", unit="epoch"):
        model.train()
        for idx in torch.randperm(len(data.x_train), generator=g).split(128):
            target = F.one_hot(data.y_train[idx], data.num_classes).float()
            loss = 0.5 * (model(data.x_train[idx]) - target).pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    acc = accuracy_on(model, data.x_test, data.y_test)
    model.save_pretrained(out, extra={"data": spec})
    atomic_write_json(out / "summary.json", {"model": name, "data": spec, "test_accuracy": acc, "epochs": epochs,
                                             "seconds": time.perf_counter() - start,
                                             "config": {"seed": seed, "optimizer": "SGD lr 0.1", "loss": "MSE",
                                                        "batch_size": 128}})
    return out


def measure(run_dir: Path, samples: int) -> dict:
    src = open_source(str(run_dir))
    data = load_data(src.record.get("data") or "digits")
    rep = ansatz_report(src, data, run_dir / "ansatz", samples, progress=True)
    minus = ansatz_report(src, data, run_dir / "ansatz-w-w0", samples, remove_init=True, progress=True)
    rep["results"]["trained_w_minus_w0"] = minus["results"]["trained"]
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    rep["test_accuracy"] = summary.get("test_accuracy")
    return rep


def mean(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if r[key] is not None]
    return sum(vals) / len(vals)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20, help="SGD epochs of the reference MLP")
    p.add_argument("--samples", type=int, default=1000, help="training images of the AGOP")
    p.add_argument("--run", action="append", default=[], help="a further run folder to measure (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "feature_ansatz.json"))
    p.add_argument("--mlp-dir", default=str(ROOT / "runs" / "ansatz-reference-mlp"),
                   help="folder of the reference MLP (trained there when it holds no model)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    mlp_dir = Path(args.mlp_dir)
    if not (mlp_dir / "model.safetensors").is_file():
        train_reference_mlp(mlp_dir, args.epochs)
    reports = {str(d): measure(Path(d), args.samples) for d in [mlp_dir, *args.run]}
    atomic_write_json(Path(args.out), reports)
    line = []
    for d, rep in reports.items():
        print(f"\n{rep['model']} ({d}), test accuracy {rep['test_accuracy']}, {rep['samples']} images")
        print(f"{'map':<42} {'kind':<10} {'corr½ init':>10} {'corr½ trained':>13} {'corr½ W-W0':>10} "
              f"{'frame init':>10} {'frame trained':>13} {'λmin/λmax':>9} {'corr(G,WWᵀ)':>11}")
        res = rep["results"]
        for a, b, c in zip(res["init"], res["trained"], res["trained_w_minus_w0"]):
            print(f"{a['name']:<42} {a['kind']:<10} {a['corr_half']:>10.3f} {b['corr_half']:>13.3f} "
                  f"{c['corr_half']:>10.3f} {a['frame_distance_normalised']:>10.3f} "
                  f"{b['frame_distance_normalised']:>13.3f} {b['eig_ratio']:>9.2e} "
                  f"{b['corr_G_WWt'] if b['corr_G_WWt'] is not None else float('nan'):>11.3f}")
        t = rep["results"]["trained"]
        line.append(f"{rep['model']}: corr½ {mean(t, 'corr_half'):.3f} (W-W0 "
                    f"{mean(res['trained_w_minus_w0'], 'corr_half'):.3f}), frame {mean(t, 'frame_distance_normalised'):.3f}")
    print("\n" + "; ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
