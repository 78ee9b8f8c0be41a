"""Sparse rate reduction as a complexity measure and as a regulariser (REFERENCE §8), on the embedded digits.

1. Complexity study: a full grid of 32 small CRATE-family models (``--grid variants``: the four §8 compression-step
   variants; ``--grid crate``: CRATE with depth and ISTA step size as axes; width, learning rate and batch always),
   each trained with Adam (constant learning rate, no augmentation) until the training cross-entropy reaches 0.01
   or ``--max-epochs``. For each: the generalisation gap (test loss − training loss at that point), μ_SRR on 512
   training images (LayerNorm removed, γ = 1 i.e. ε = √(p/N), λ = 0.1; and with LayerNorm kept), and the baselines
   of :mod:`srr.analysis.complexity`. Kendall's τ of every measure against the gap, overall and granulated (Ψ).
2. Regulariser: the same model trained with and without ``c · (R^c − R)`` of one layer (gradient to that layer only),
   same epochs, batch and learning rate; test accuracy over seeds.

Results go to ``benchmarks/results/srr_generalisation_GRID.json`` (written after every model: an interrupted run resumes)
and ``.md``; one line of figures is printed at the end. Usage:
``PYTHONPATH=src python benchmarks/srr_generalisation.py [--grid variants|crate] [--max-epochs 60] [--seeds 3]``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import srr
from srr.analysis.complexity import (granulated_tau, inverse_margin, kendall_tau, parameter_norm, path_norm,
                                     sharpness, srr_measure, srr_penalty)
from srr.data import load_data
from srr.io import atomic_write_json, atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ["crate", "crate_conceptual", "crate_negative", "crate_transpose"]
MEASURES = ["mu_srr", "mu_srr_ln_kept", "param_norm", "path_norm", "sharpness", "inverse_margin"]


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on in-memory ``(x, y)``, in evaluation mode."""
    was = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        loss_sum += float(F.cross_entropy(logits, y[i:i + batch_size], reduction="sum"))
        correct += int((logits.argmax(-1) == y[i:i + batch_size]).sum())
    model.train(was)
    return loss_sum / len(x), correct / len(x)


def grid(kind: str, quick: bool) -> tuple[list[str], list[dict]]:
    """Axes and the list of configurations (full factorial): ``variants`` (the §8 variants × width × lr × batch) or
    ``crate`` (CRATE only: depth × ISTA step size × width × lr × batch)."""
    variants = [v for v in VARIANTS if f"{v}_nano" in srr.list_models()]
    axes = {"width": [32, 64], "lr": [2e-3, 5e-3], "batch": [32, 128]}
    if kind == "variants":
        if len(variants) < 2:
            raise SystemExit("the §8 variants (crate_conceptual_nano, ...) are not registered: use --grid crate")
        axes = {"variant": variants, **axes}
    else:
        axes = {"depth": [2, 3], "step_size": [0.1, 0.3], **axes}
    if quick:
        axes = {k: v[:1] if k not in ("width", "lr") else v for k, v in axes.items()}
    names = list(axes)
    return names, [dict(zip(names, vals)) for vals in itertools.product(*axes.values())]


def build(cfg: dict, data, seed: int):
    torch.manual_seed(seed)
    args = {**data.model_overrides(), "dim": cfg["width"], "depth": cfg.get("depth", 2), "heads": 4}
    if "step_size" in cfg:
        args["step_size"] = cfg["step_size"]
    return srr.create_model(f"{cfg.get('variant', 'crate')}_nano", **args)


def fit(model, data, lr: float, batch: int, max_epochs: int, seed: int, target: float | None = 0.01,
        reg: float = 0.0, reg_layer: int = -1) -> dict:
    """Adam at a constant ``lr``; stops after the epoch whose full training cross-entropy is ≤ ``target``."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    n, epochs, train_loss = len(data.x_train), 0, float("nan")
    for epochs in range(1, max_epochs + 1):
        model.train()
        for idx in torch.randperm(n, generator=g).split(batch):
            xb, yb = data.x_train[idx], data.y_train[idx]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if reg:
                term, params = srr_penalty(model, xb, reg_layer)
                for p, gr in zip(params, torch.autograd.grad(reg * term, params, allow_unused=True)):
                    if gr is not None:
                        p.grad = gr if p.grad is None else p.grad + gr
            opt.step()
        train_loss, train_acc = evaluate(model, data.x_train, data.y_train)
        if not math.isfinite(train_loss):
            break
        if target is not None and train_loss <= target:
            break
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    return {"epochs": epochs, "train_loss": train_loss, "train_accuracy": train_acc, "test_loss": test_loss,
            "test_accuracy": test_acc, "gap": test_loss - train_loss, "reached_target": bool(train_loss <= 0.01)}


def measure(model, data) -> dict:
    x, y = data.x_train[:512], data.y_train[:512]
    return {"mu_srr": srr_measure(model, x)["mu"], "mu_srr_ln_kept": srr_measure(model, x, remove_layernorm=False)["mu"],
            "param_norm": parameter_norm(model), "path_norm": path_norm(model, tuple(x.shape[1:])),
            "sharpness": sharpness(model, x[:256], y[:256]), "inverse_margin": inverse_margin(model, x, y)}


def complexity_study(data, args, state: dict, save) -> dict:
    axes, configs = grid(args.grid, args.quick)
    done = {json.dumps(r["config"], sort_keys=True): r for r in state.get("models", [])}
    rows = []
    for cfg in tqdm(configs, desc="complexity grid", unit="model"):
        key = json.dumps(cfg, sort_keys=True)
        if key not in done:
            start = time.perf_counter()
            model = build(cfg, data, seed=0)
            info = fit(model, data, cfg["lr"], cfg["batch"], args.max_epochs, seed=0)
            done[key] = {"config": cfg, **info, **measure(model, data), "seconds": time.perf_counter() - start}
            state["models"] = list(done.values())
            save()
        rows.append({**done[key], **done[key]["config"]})
    finite = [r for r in rows if math.isfinite(r["gap"])]
    taus = {m: {"tau": kendall_tau([r[m] for r in finite], [r["gap"] for r in finite]),
                **granulated_tau(finite, axes, m)} for m in MEASURES}
    return {"axes": axes, "models": len(rows), "finite": len(finite), "taus": taus}


def regulariser_study(data, args, state: dict, save) -> dict:
    cfg = {"width": 64, "depth": 3, "heads": 4}
    runs = {(r["c"], r["seed"]): r for r in state.get("regulariser_runs", [])}
    for c, seed in tqdm(list(itertools.product([0.0, *args.reg], range(args.seeds))), desc="regulariser", unit="run"):
        if (c, seed) in runs:
            continue
        torch.manual_seed(seed)
        model = srr.create_model("crate_nano", **data.model_overrides(), dim=cfg["width"], depth=cfg["depth"],
                                 heads=cfg["heads"])
        info = fit(model, data, 1e-3, 64, args.reg_epochs, seed, target=None, reg=c, reg_layer=args.reg_layer)
        runs[(c, seed)] = {"c": c, "seed": seed, **info}
        state["regulariser_runs"] = list(runs.values())
        save()
    summary = {}
    for c in [0.0, *args.reg]:
        acc = torch.tensor([runs[(c, s)]["test_accuracy"] for s in range(args.seeds)], dtype=torch.float64)
        summary[str(c)] = {"mean": float(acc.mean()), "std": float(acc.std()) if len(acc) > 1 else 0.0,
                           "runs": acc.tolist()}
    return {"model": {"name": "crate_nano", **cfg}, "epochs": args.reg_epochs, "lr": 1e-3, "batch": 64,
            "layer": args.reg_layer, "accuracy": summary}


def markdown(result: dict) -> str:
    cs, rs = result["complexity"], result["regulariser"]
    reached = sum(m["reached_target"] for m in result["models"])
    lines = [f"Complexity study: {cs['models']} models on digits (axes: {', '.join(cs['axes'])}; {reached} reached "
             f"training cross-entropy 0.01 within {result['settings']['max_epochs']} epochs), Kendall τ of each "
             "measure against the generalisation gap (test − train cross-entropy). Wall time of the whole benchmark: "
             f"{result['seconds_total'] / 60:.1f} min.", "",
             "| measure | τ overall | Ψ (granulated) | " + " | ".join(f"ψ {a}" for a in cs["axes"]) + " |",
             "|---|---|---|" + "---|" * len(cs["axes"])]
    f = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    for m, t in cs["taus"].items():
        lines.append(f"| {m} | {f(t['tau'])} | {f(t['psi'])} | " +
                     " | ".join(f(t["per_axis"][a]) for a in cs["axes"]) + " |")
    m = rs["model"]
    lines += ["", f"SRR regulariser ({m['name']}, width {m['width']}, depth {m['depth']}, {m['heads']} heads; "
                  f"{rs['epochs']} epochs, Adam lr {rs['lr']}, batch {rs['batch']}, "
                  f"layer {rs['layer']}): test accuracy over seeds", "", "| c | mean | std | runs |", "|---|---|---|---|"]
    for c, s in rs["accuracy"].items():
        lines.append(f"| {c} | {s['mean']:.4f} | {s['std']:.4f} | {', '.join(f'{v:.4f}' for v in s['runs'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", choices=["variants", "crate"], default="variants",
                   help="the §8 variants x width x lr x batch (default), or CRATE x depth x step size x width x lr x batch")
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--reg", type=float, nargs="*", default=[1e-3, 1e-2], help="regulariser weights c tried")
    p.add_argument("--reg-epochs", type=int, default=20)
    p.add_argument("--reg-layer", type=int, default=-1)
    p.add_argument("--quick", action="store_true", help="a few models only (a smoke test)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: small models on a shared CPU run far faster so)")
    p.add_argument("--out", help="results file (default benchmarks/results/srr_generalisation_GRID.json)")
    args = p.parse_args(argv)
    args.out = args.out or str(RESULTS / f"srr_generalisation_{args.grid}.json")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    state = json.loads(out.read_text()) if out.is_file() else {}
    save = lambda: atomic_write_json(out, state)  # noqa: E731
    data = load_data("digits")
    start = time.perf_counter()
    state["complexity"] = complexity_study(data, args, state, save)
    state["regulariser"] = regulariser_study(data, args, state, save)
    state["settings"] = {k: v for k, v in vars(args).items() if k != "out"}
    state["seconds_total"] = state.pop("seconds_this_run", 0.0) + state.get("seconds_total", 0.0) + (
        time.perf_counter() - start)  # wall time summed over resumed runs
    save()
    atomic_write_text(out.with_suffix(".md"), markdown(state))
    t, acc = state["complexity"]["taus"], state["regulariser"]["accuracy"]
    best = max((c for c in acc if c != "0.0"), key=lambda c: acc[c]["mean"])
    f = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    print(f"tau(mu_srr, gap) {f(t['mu_srr']['tau'])}  tau(path_norm) {f(t['path_norm']['tau'])}  "
          f"tau(sharpness) {f(t['sharpness']['tau'])}  psi(mu_srr) {f(t['mu_srr']['psi'])}  "
          f"acc with SRR (c={best}) / without {acc[best]['mean'] / acc['0.0']['mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
