"""Feature learning across trained models: the ansatz, G ∝ I against G ∝ W Wᵀ, the left singular vectors, and a
Recursive Feature Machine next to the networks' AGOP (issue 16; the statistics are docs/principles.md's).

Models, all trained by srr's engine on the embedded digits (1,438 train / 359 test images, 8×8), seed 0:

* 16 MLPs (``mlp_nano`` with width 128 or 512, 1 or 3 hidden layers, ReLU or GELU, bias-free), each with the
  square loss on one-hot labels (objective ``mse``) and with cross-entropy (``classification``): plain SGD (no
  momentum), learning rate ``--mlp-lr``, batch 128, no weight decay, cosine without warm-up, ``--mlp-epochs`` epochs;
* ``crate_nano`` and ``vit_nano`` (8×8 digits, patch 2), each with both losses: AdamW, learning rate 1e-3, weight
  decay 0.05, batch 128, one warm-up epoch, ``--transformer-epochs`` epochs.

Per linear map (:func:`srr.principles.layer_alignment`, ``--samples`` training images, uncentred logit gradients):
Pearson(WᵀW, AGOP^α) for α = ½ and 1; the tight-frame statistics of G (G ∝ I) and of G whitened by W Wᵀ on the range
of W (G ∝ W Wᵀ); Pearson(G, W Wᵀ); Pearson(W Wᵀ, C^α), C the centred gradient covariance. The same at
initialisation. Model means leave out the read-out (the last linear map), whose G is exactly I for every network.

RFM: srr's Recursive Feature Machine (Laplace kernel, bandwidth 10, ρ = 1e-3, M ← AGOP, ``--rfm-iterations``
rounds) on the same training images, its test accuracy per round, and Pearson of its M with each trained MLP's
input AGOP (= W₁ᵀ G₁ W₁) and with W₁ᵀW₁; with ``xrfm`` importable, also xrfm's M against srr's.

Writes ``benchmarks/results/feature_learning.{json,md,png}`` and prints one line.

    PYTHONPATH=src python benchmarks/feature_learning.py
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import srr  # noqa: E402
from srr.analysis.ansatz import gradient_moments, pearson  # noqa: E402
from srr.analysis.plotting import pyplot, save_png  # noqa: E402
from srr.data import load_data  # noqa: E402
from srr.io import atomic_write_json, atomic_write_text  # noqa: E402
from srr.objectives import Classification, ClassificationConfig  # noqa: E402
from srr.objectives.mse import MeanSquaredError, MSEConfig  # noqa: E402
from srr.principles import layer_alignment, rfm  # noqa: E402
from srr.training import TrainConfig, train  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def model_grid(args) -> list[dict]:
    grid = []
    for width in (128, 512):
        for depth in (1, 3):
            for act in ("relu", "gelu"):
                for loss in ("mse", "ce"):
                    grid.append({"name": f"mlp_w{width}_d{depth}_{act}_{loss}", "family": "mlp", "model": "mlp_nano",
                                 "args": {"width": width, "depth": depth, "activation": act}, "loss": loss,
                                 "activation": act, "width": width, "depth": depth})
    for family in ("crate", "vit"):
        for loss in ("mse", "ce"):
            grid.append({"name": f"{family}_nano_{loss}", "family": family, "model": f"{family}_nano", "args": {},
                         "loss": loss, "activation": "gelu" if family == "vit" else "ista"})
    return grid


def train_one(spec: dict, data, args) -> tuple:
    mlp = spec["family"] == "mlp"
    epochs = args.mlp_epochs if mlp else args.transformer_epochs
    warm = 0.0 if mlp else 1.0
    if spec["loss"] == "mse":
        objective = MeanSquaredError(MSEConfig(epochs=epochs, warmup_epochs=warm), data)
    else:
        objective = Classification(ClassificationConfig(epochs=epochs, warmup_epochs=warm), data)
    config = TrainConfig(batch_size=128, lr=args.mlp_lr if mlp else 1e-3, weight_decay=0.0 if mlp else 0.05,
                         optimizer="sgd" if mlp else "adamw", beta1=0.0 if mlp else 0.9, seed=0, tensorboard=False,
                         device="cpu")
    torch.manual_seed(0)
    model = srr.create_model(spec["model"], **{**data.model_overrides(), **spec["args"]})
    init = copy.deepcopy(model)
    with contextlib.redirect_stdout(io.StringIO()):
        summary = train(model, objective, config, None, progress=False)
    return model.eval(), init.eval(), summary


def summarise(rows: list[dict]) -> dict:
    """Means over the maps, the read-out left out."""
    body = rows[:-1] if len(rows) > 1 else rows

    def mean(get):
        vals = [v for v in (get(r) for r in body) if v is not None]
        return statistics.fmean(vals) if vals else None

    return {"maps": len(body),
            "ansatz_half": mean(lambda r: r["ansatz"]["0.5"]), "ansatz_one": mean(lambda r: r["ansatz"]["1.0"]),
            "ansatz_half_minus_init": mean(lambda r: r.get("ansatz_minus_init", {}).get("0.5")),
            "distance_identity": mean(lambda r: r["identity"]["distance"]),
            "distance_wwt": mean(lambda r: r["wwt"]["distance"]),
            "frame_identity": mean(lambda r: r["identity"]["frame_distance_normalised"]),
            "eig_ratio_identity": mean(lambda r: r["identity"]["eig_ratio"]),
            "frame_wwt_whitened": mean(lambda r: r["wwt"]["frame_distance_normalised"]),
            "eig_ratio_wwt_whitened": mean(lambda r: r["wwt"]["eig_ratio"]),
            "corr_G_WWt": mean(lambda r: r["wwt"]["corr"]),
            "left_half": mean(lambda r: r["left"]["0.5"]), "left_one": mean(lambda r: r["left"]["1.0"])}


def rfm_part(data, trained: dict, args) -> dict:
    x, y = data.x_train[: args.samples].reshape(min(args.samples, len(data.x_train)), -1).double(), \
        data.y_train[: args.samples]
    xt, yt = data.x_test.reshape(len(data.x_test), -1).double(), data.y_test
    start = time.perf_counter()
    machine = rfm(x, y, iterations=args.rfm_iterations, bandwidth=10.0, reg=1e-3, x_test=xt, y_test=yt)
    out = {"history": machine.history, "seconds": time.perf_counter() - start, "vs_networks": {}}
    for name, model in trained.items():
        if not name.startswith("mlp"):
            continue
        first = next(iter(gradient_moments(model, data.x_train[: args.samples]).values()))
        W = first["weight"].double()
        agop = W.T @ first["G"] @ W
        out["vs_networks"][name] = {"corr_M_agop": pearson(machine.M, agop), "corr_M_WtW": pearson(machine.M, W.T @ W)}
    try:
        import xrfm
    except ImportError:
        out["xrfm"] = "not installed"
        return out
    targets = torch.nn.functional.one_hot(y, 10).double()
    theirs = xrfm.RFM(kernel="laplace", iters=args.rfm_iterations, bandwidth=10.0, device="cpu", verbose=False)
    theirs.fit((x, targets), (xt, torch.nn.functional.one_hot(yt, 10).double()), reg=1e-3, early_stop_rfm=False,
               return_best_params=False, iters=args.rfm_iterations)
    out["xrfm"] = {"version": getattr(xrfm, "__version__", "?"),
                   "max_abs_difference_M": float((theirs.M.double() - machine.M).abs().max()),
                   "test_accuracy": float((theirs.predict(xt).argmax(1) == yt).double().mean())}
    return out


def table(results: list[dict]) -> str:
    head = ("| model | loss | act. | test acc. | ansatz α=½ | ansatz α=1 | ansatz α=½, W−W₀ | ansatz α=½ at init | "
            "‖Ĝ − I/k‖ | ‖Ĝ − ŴŴᵀ‖ | λmin/λmax G | whitened frame G∝WWᵀ | corr(G,WWᵀ) | left corr(WWᵀ,C) |\n|"
            + "---|" * 14 + "\n")
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    lines = []
    for r in results:
        t, i = r["trained"], r["init"]
        lines.append(f"| {r['name']} | {r['loss']} | {r['activation']} | {fmt(r['test_accuracy'])} | "
                     f"{fmt(t['ansatz_half'])} | {fmt(t['ansatz_one'])} | {fmt(t['ansatz_half_minus_init'])} | "
                     f"{fmt(i['ansatz_half'])} | {fmt(t['distance_identity'])} | {fmt(t['distance_wwt'])} | "
                     f"{fmt(t['eig_ratio_identity'])} | {fmt(t['frame_wwt_whitened'])} | {fmt(t['corr_G_WWt'])} | "
                     f"{fmt(t['left_one'])} |")
    return head + "\n".join(lines) + "\n"


def groups(results: list[dict]) -> dict:
    """Means per loss and per activation over the MLPs, and per family over every model."""
    out = {}
    for key in ("loss", "activation", "family"):
        pool = results if key == "family" else [r for r in results if r["family"] == "mlp"]
        for value in sorted({r[key] for r in pool}):
            sel = [r["trained"] for r in pool if r[key] == value]
            out[f"{key}={value}"] = {k: statistics.fmean(s[k] for s in sel if s[k] is not None)
                                     for k in ("ansatz_half", "ansatz_one", "ansatz_half_minus_init",
                                               "distance_identity", "distance_wwt",
                                               "frame_wwt_whitened", "corr_G_WWt", "left_one")} | {"models": len(sel)}
    return out


def plot(results: list[dict], path) -> None:
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    markers = {"mse": "o", "ce": "s"}
    colours = {"relu": "tab:blue", "gelu": "tab:orange", "ista": "tab:green"}
    for r in results:
        t = r["trained"]
        kw = dict(marker=markers[r["loss"]], color=colours[r["activation"]], s=40 if r["family"] == "mlp" else 90,
                  edgecolors="k" if r["family"] != "mlp" else "none")
        a1.scatter(t["distance_identity"], t["distance_wwt"], **kw)
        a2.scatter(t["ansatz_one"], t["ansatz_half"], **kw)
    top = 1.15 * max(max(r["trained"]["distance_identity"], r["trained"]["distance_wwt"]) for r in results)
    for a, hi in ((a1, top), (a2, 1.0)):
        a.plot([0, hi], [0, hi], "k--", lw=0.8)
        a.set(xlim=(0, hi), ylim=(0, hi))
        a.grid(alpha=0.3)
    a1.set(xlabel=r"$\|G/\mathrm{tr}\,G - I/k\|_F$: distance from $G \propto I$",
           ylabel=r"$\|G/\mathrm{tr}\,G - WW^\top/\mathrm{tr}\,WW^\top\|_F$: distance from $G \propto WW^\top$",
           title="which form? (below the diagonal: G ∝ WWᵀ closer)")
    a2.set(xlabel=r"Pearson($W^\top W$, AGOP$^1$)", ylabel=r"Pearson($W^\top W$, AGOP$^{1/2}$)",
           title="feature ansatz, power 1 against ½ (mean over maps)")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker="o", ls="", color="grey", label="MSE"),
               Line2D([], [], marker="s", ls="", color="grey", label="cross-entropy")] + \
              [Line2D([], [], marker="o", ls="", color=c, label=k if k != "ista" else "CRATE (ISTA)")
               for k, c in colours.items()] + \
              [Line2D([], [], marker="o", ls="", color="w", markeredgecolor="k", ms=9, label="transformer (large)")]
    a2.legend(handles=handles, fontsize=8, loc="lower right")
    fig.suptitle("feature learning on digits: per model, mean over its linear maps (read-out left out)", fontsize=10)
    save_png(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlp-epochs", type=int, default=40)
    p.add_argument("--mlp-lr", type=float, default=0.1)
    p.add_argument("--transformer-epochs", type=int, default=30)
    p.add_argument("--samples", type=int, default=1000, help="training images of the AGOP, G and the RFM")
    p.add_argument("--rfm-iterations", type=int, default=3)
    p.add_argument("--only", default="", help="comma-separated model names (default: all 20)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "feature_learning.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_data("digits")
    x = data.x_train[: args.samples]
    grid = [s for s in model_grid(args) if not args.only or s["name"] in args.only.split(",")]
    results, trained, start = [], {}, time.perf_counter()
    for spec in grid:
        model, init, summary = train_one(spec, data, args)
        rows = layer_alignment(model, x, init=init)
        results.append({**{k: spec[k] for k in ("name", "family", "loss", "activation")},
                        "test_accuracy": summary.get("test_accuracy"), "train_seconds": summary["seconds"],
                        "parameters": summary["parameters"], "trained": summarise(rows),
                        "init": summarise(layer_alignment(init, x)), "maps": rows})
        trained[spec["name"]] = model
        print(f"{spec['name']:<24} acc {summary.get('test_accuracy'):.3f}  {summary['seconds']:.0f} s", flush=True)
    report = {"data": "digits", "samples": len(x), "models": results, "groups": groups(results),
              "rfm": rfm_part(data, trained, args), "seconds": time.perf_counter() - start,
              "protocol": __doc__}
    out = Path(args.out)
    atomic_write_json(out, report)
    atomic_write_text(out.with_suffix(".md"), table(results))
    plot(results, out.with_suffix(".png"))
    g = report["groups"]
    closer = sum(r["trained"]["distance_wwt"] < r["trained"]["distance_identity"] for r in results)
    rf = report["rfm"]
    vs = [v["corr_M_agop"] for v in rf["vs_networks"].values() if v["corr_M_agop"] is not None]
    half = statistics.fmean(r["trained"]["ansatz_half"] for r in results)
    one = statistics.fmean(r["trained"]["ansatz_one"] for r in results)
    hist = rf["history"]
    print(f"{len(results)} models: G∝WWᵀ closer than G∝I in {closer}; ‖Ĝ−I/k‖ MLP mse "
          f"{g['loss=mse']['distance_identity']:.3f} / ce {g['loss=ce']['distance_identity']:.3f}; ansatz α=½ "
          f"{half:.3f} vs α=1 {one:.3f}; RFM test acc {hist[0]['test_accuracy']:.3f} -> "
          f"{hist[-1]['test_accuracy']:.3f}, corr(M, MLP AGOP) mean {statistics.fmean(vs) if vs else float('nan'):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
