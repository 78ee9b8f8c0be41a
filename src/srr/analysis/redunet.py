"""Build a ReduNet on a labelled data set, measure every layer, evaluate on the test split, write the report.

Per layer ℓ (0 = the normalised input) of the *training* features: ``R``, ``R^c`` (true labels) and ``ΔR = R − R^c``
with the network's ε (the shift-invariant rates for ``--arch conv``, see :mod:`srr.redunet.rates`), the mean |cosine| within and between classes, and the accuracy of the memberships π̂ that the
layer estimated. On the test split: nearest-subspace and k-NN accuracy of the output features (and of the input
features, for comparison) and the accuracy of the network's own prediction argmax π̂. Files: ``layers.json``,
``rates.png``, ``similarity.png``, ``summary.json`` and the network (``config.json`` + ``model.safetensors``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import Tensor

from ..redunet.layer import DEFAULT_EPS, DEFAULT_ETA, DEFAULT_LAM
from ..redunet.network import ReduNet
from ..redunet.rates import redunet_rates
from .classifiers import accuracy, knn, nearest_subspace
from .similarity import class_cosines, plot_cosine_matrices
from ..errors import ConfigError
from ..io import atomic_path, atomic_write_json
from ..runfolder import claim_run_folder

__all__ = ["per_class_subset", "build_for_data", "run_experiment", "plot_rates"]


def per_class_subset(labels: Tensor, n: int | None, seed: int = 0) -> Tensor:
    """Indices of at most ``n`` samples per class (a fixed random choice), sorted; all indices if ``n`` is None."""
    if n is None:
        return torch.arange(len(labels))
    if n < 1:
        raise ConfigError(f"samples per class must be positive, got {n}")
    g = torch.Generator().manual_seed(seed)
    picks = []
    for j in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == j).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    return torch.sort(torch.cat(picks)).values


def build_for_data(data, layers: int, arch: str = "vector", channels: int = 8, kernel: int = 3,
                   eta: float = DEFAULT_ETA, eps: float = DEFAULT_EPS, lam: float = DEFAULT_LAM,
                   seed: int = 0) -> ReduNet:
    """An unbuilt ReduNet that fits ``data``: ``vector`` (flattened images) or ``conv`` (a random 2-D circular
    lift to ``channels`` channels with ``kernel`` × ``kernel`` filters, then the 2-D shift-invariant layers)."""
    c, (h, w) = data.channels, data.image_size
    if arch == "vector":
        return ReduNet(data.num_classes, layers, c * h * w, eta=eta, eps=eps, lam=lam, seed=seed)
    if arch == "conv":
        return ReduNet(data.num_classes, layers, channels, spatial=(h, w), in_channels=c, kernel=kernel, eta=eta,
                       eps=eps, lam=lam, seed=seed)
    raise ConfigError(f"unknown ReduNet architecture {arch!r}; choose 'vector' or 'conv'")


def _evaluate(train_z, train_y, test_z, test_y, k, n_components, num_classes) -> dict:
    r = min(n_components, train_z.flatten(1).shape[1])
    return {"nearest_subspace": accuracy(nearest_subspace(train_z, train_y, test_z, r, num_classes), test_y),
            "knn": accuracy(knn(train_z, train_y, test_z, k, num_classes), test_y)}


def run_experiment(data, layers: int, out_dir: str | Path, arch: str = "vector", *, eta: float = DEFAULT_ETA,
                   eps: float = DEFAULT_EPS, lam: float = DEFAULT_LAM, channels: int = 8, kernel: int = 3,
                   samples_per_class: int | None = None, k: int = 5, n_components: int = 10, seed: int = 0,
                   progress: bool = True, overwrite: bool = False) -> dict:
    """Build, measure, evaluate and write everything to the run folder ``out_dir`` (owned by this run: a folder
    holding another run is refused unless ``overwrite``); returns the summary."""
    from ..checks import check_int

    check_int(layers, "--layers", low=1, high=4096)
    net = build_for_data(data, layers, arch, channels, kernel, eta, eps, lam, seed)  # refused before any file
    lock = claim_run_folder(out_dir, overwrite=overwrite)
    try:
        return _experiment(data, net, layers, Path(out_dir), arch, eta, lam, kernel, samples_per_class, k,
                           n_components, seed, progress)
    finally:
        lock.release()


def _experiment(data, net, layers, out, arch, eta, lam, kernel, samples_per_class, k, n_components, seed,
                progress) -> dict:
    atomic_write_json(out / "run.json", {"kind": "redunet", "data": data.spec, "arch": arch, "layers": layers,
                                         "status": "running"})
    pick = per_class_subset(data.y_train, samples_per_class, seed)
    x_train, y_train = data.unnormalize(data.x_train[pick]), data.y_train[pick]
    x_test, y_test = data.unnormalize(data.x_test), data.y_test
    chunk = max(16, 2 ** 25 // (data.num_classes * net.channels * max(1, math.prod(net.spatial))))
    rows: list[dict] = []

    def measure(ell: int, z: Tensor, pi: Tensor | None) -> None:
        row = {"layer": ell, **redunet_rates(z, y_train, net.eps, data.num_classes, len(net.spatial)),
               **class_cosines(z, y_train)}
        row["membership_accuracy"] = None if pi is None else accuracy(pi.argmax(1), y_train)
        rows.append(row)

    start = time.perf_counter()
    z0_train = net.features_in(x_train)
    z_train = net.build(x_train, y_train, callback=measure, progress=progress, chunk=chunk)
    build_seconds = time.perf_counter() - start
    z_test, pi_test = net.transform(x_test, chunk=chunk)
    z0_test = net.features_in(x_test)
    summary = {
        "data": data.spec, "arch": arch, "layers": layers, "eta": eta, "eps": net.eps, "eps_squared": net.eps ** 2,
        "lam": lam, "channels": net.channels, "kernel": kernel if arch == "conv" else None,
        "train_samples": len(pick), "test_samples": len(x_test), "k": k, "n_components": n_components,
        "test_accuracy": {
            "redunet_memberships": accuracy(pi_test.argmax(1), y_test),
            "output": _evaluate(z_train, y_train, z_test, y_test, k, n_components, data.num_classes),
            "input": _evaluate(z0_train, y_train, z0_test, y_test, k, n_components, data.num_classes),
        },
        "delta_R": {"first": rows[0]["delta_R"], "last": rows[-1]["delta_R"],
                    "rises_every_layer": all(b["delta_R"] > a["delta_R"] for a, b in zip(rows, rows[1:]))},
        "between_class_cosine": {"input": rows[0]["between"], "output": rows[-1]["between"]},
        "test_between_class_cosine": {"input": class_cosines(z0_test, y_test)["between"],
                                      "output": class_cosines(z_test, y_test)["between"]},
        "build_seconds": build_seconds,
    }
    atomic_write_json(out / "layers.json", {"eps": net.eps, "data": data.spec, "layers": rows})
    atomic_write_json(out / "summary.json", summary)
    plot_rates(rows, out / "rates.png", title=f"ReduNet ({arch}) on {data.spec}, ε² = {net.eps ** 2:.3g}")
    plot_cosine_matrices({"train, input": (z0_train, y_train), "train, output": (z_train, y_train),
                          "test, input": (z0_test, y_test), "test, output": (z_test, y_test)},
                         out / "similarity.png")
    net.save(out, extra={"data": data.spec, "preprocessing": data.preprocessing() if hasattr(data, "preprocessing")
                         else {"mean": list(data.mean), "std": list(data.std)}, "objective": "redunet"})
    atomic_write_json(out / "run.json", {"kind": "redunet", "data": data.spec, "arch": arch, "layers": layers,
                                         "status": "finished"})
    return summary


def plot_rates(rows: list[dict], path, title: str = "") -> None:
    """ΔR, R and R^c of the training features against the layer index (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [r["layer"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, label in (("delta_R", r"$\Delta R$"), ("R", r"$R$"), ("Rc", r"$R^c$")):
        ax.plot(layers, [r[key] for r in rows], marker="o", ms=3, label=label)
    ax.set(xlabel="layer", ylabel="nats", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
