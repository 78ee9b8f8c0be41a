"""Claims about what CRATE's layers do: compression and sparsity with depth, the compression-step variants."""
from __future__ import annotations

import torch

from .base import Measured, register_claim
from .common import arrow, data_for, evaluate, fit, mean_std, shown

CRATE_PAPER = "Yu et al., White-Box Transformers via Sparse Rate Reduction (NeurIPS 2023), layer-wise figures"
STUDY = "Hu, Zou, Xu, On the Sparse Rate Reduction of CRATE (NeurIPS 2024)"

LAYER_PROTOCOL = {
    "tiny": {"model": "crate_nano", "data": "digits", "depths": [2, 3], "model_args": {"dim": 16, "heads": 2},
             "epochs": 1, "batch": 64, "lr": 1e-3, "samples": 64},
    "cpu": {"model": {"idx": "crate_micro", "digits": "crate_nano"}, "data": "idx", "depths": [6, 12],
            "model_args": {"dim": 64, "heads": 4}, "epochs": 4, "batch": 64, "lr": 1e-3, "samples": 512},
    "paper": {"model": "crate_base", "data": "folder", "depths": [12], "model_args": {},
              "epochs": 150, "batch": 1024, "lr": 2.4e-4, "samples": 1000},
}


def _layer_runs(ctx) -> dict:
    """Per depth and seed: the layer table (R^c against each layer's own subspaces, fraction of non-zero ISTA
    outputs) of the trained model and of its initialisation, on the same test images; cached, shared by the two
    layer claims."""
    from ..analysis.layers import layer_statistics

    p = ctx.params
    spec = ctx.data_spec(p["data"])
    data = data_for(spec)
    name = p["model"][spec.partition(":")[0]] if isinstance(p["model"], dict) else p["model"]
    x = data.x_test[:p["samples"]]
    runs = {}
    for depth in p["depths"]:
        for seed in range(ctx.seeds):
            def measure(depth=depth, seed=seed):
                model, summary = fit(ctx, f"layers-d{depth}-s{seed}", name, data, seed=seed,
                                     model_args={**p["model_args"], "depth": depth},
                                     train={"batch_size": p["batch"], "lr": p["lr"]},
                                     objective_args={"epochs": p["epochs"]})
                random_copy = _initial(name, data, {**p["model_args"], "depth": depth}, seed)
                return {"trained": layer_statistics(model, x), "random": layer_statistics(random_copy, x),
                        "test_accuracy": summary.get("test_accuracy")}
            runs[(depth, seed)] = ctx.step(f"layers/{name}-d{depth}-s{seed}", measure)
    return {"model": name, "data": spec, "runs": runs}


def _initial(name: str, data, args: dict, seed: int):
    """The model as the engine initialised it for ``seed`` (the random-initialisation control)."""
    from ..models import create_model

    torch.manual_seed(seed)
    return create_model(name, **{**data.model_overrides(), **args}).eval()


def _trend(values: list[float]) -> float:
    """Spearman's rank correlation of ``values`` with their layer index (−1: falls at every layer; ties averaged)."""
    n = len(values)
    order = sorted(range(n), key=lambda i: values[i])
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    mean = (n - 1) / 2
    cov = sum((r - mean) * (i - mean) for i, r in enumerate(ranks))
    var_r = sum((r - mean) ** 2 for r in ranks)
    var_i = sum((i - mean) ** 2 for i in range(n))
    return cov / (var_r * var_i) ** 0.5 if var_r > 0 else 0.0


def _layer_claim(ctx, key: str, label: str) -> Measured:
    res = _layer_runs(ctx)
    per_seed, parts, series = [], [], {}
    for depth in ctx.params["depths"]:
        runs = [res["runs"][(depth, s)] for s in range(ctx.seeds)]
        for r in runs:
            t, z = [row[key] for row in r["trained"]], [row[key] for row in r["random"]]
            trend, below = _trend(t), t[-1] < z[-1]
            per_seed.append(True if trend <= -0.5 and below else False if trend >= 0.5 and not below else None)
        curve = lambda arm: [mean_std([r[arm][ell][key] for r in runs])[0] for ell in range(depth)]  # noqa: E731
        trained, rand = curve("trained"), curve("random")
        series[f"depth {depth}, trained"] = [list(range(1, depth + 1)), trained]
        series[f"depth {depth}, random init"] = [list(range(1, depth + 1)), rand]
        digits = 1 if key == "compression_mean" else 3
        parts.append(f"depth {depth}: trained {arrow(trained[0], trained[-1], digits)}, random "
                     f"{arrow(rand[0], rand[-1], digits)} (layer 1 → {depth})")
        accs = [r["test_accuracy"] for r in runs if r["test_accuracy"] is not None]
        if accs:
            parts[-1] += f", test accuracy {shown(accs)}"
    return Measured(per_seed, "; ".join(parts), {"model": res["model"], "data": res["data"], "measure": label,
                                                 "runs": [{"depth": d, "seed": s, **r}
                                                          for (d, s), r in res["runs"].items()]},
                    plot={"title": label, "x": "layer", "y": label, "series": series})


@register_claim(
    "layer-compression", minutes=5.2,
    title="R^c falls with depth in trained CRATE, below a random-initialisation control",
    source=CRATE_PAPER, kind="shape", protocol=LAYER_PROTOCOL,
    published="R^c(Z^ℓ; U^ℓ) decreases layer by layer (trained CRATE, ImageNet); no random control shown",
    cpu="crate_micro (dim 64, 4 heads) at depth 6 and 12, 4 epochs on the MNIST folder (8,000 / 2,000 images), "
        "3 seeds; R^c of each layer's input against its own subspaces (tokens L2-normalised per head, ε = 0.1) on "
        "512 test images, next to the same model at initialisation",
    paper="crate_base (depth 12), 150 epochs on ImageNet-1K (AdamW lr 2.4e-4, batch 1024; --data folder:DIR), 1 seed",
    seeds={"paper": 1},
    rule="a run (one depth, one seed) holds when the trained model's R^c falls with depth (Spearman ρ of R^c with "
         "the layer index ≤ −0.5) and ends below the random copy's last layer; the opposite when it rises "
         "(ρ ≥ +0.5) "
         "and does not end below; otherwise neither")
def layer_compression(ctx) -> Measured:
    return _layer_claim(ctx, "compression_mean", "R^c against the layer's own subspaces")


@register_claim(
    "layer-sparsity", minutes=0.1,
    title="ISTA outputs get sparser with depth in trained CRATE, sparser than a random control",
    source=CRATE_PAPER, kind="shape", protocol=LAYER_PROTOCOL,
    published="the fraction of non-zero ISTA outputs decreases layer by layer (trained CRATE, ImageNet)",
    cpu="the trained models of layer-compression; fraction of non-zero entries of each ISTA output on 512 test "
        "images, next to the same model at initialisation",
    paper="as layer-compression", seeds={"paper": 1}, shares="layer-compression",
    rule="a run (one depth, one seed) holds when the trained model's non-zero fraction falls with depth (Spearman ρ "
         "with the layer index ≤ −0.5) and ends below the random copy's last layer; the opposite when it rises "
         "(ρ ≥ +0.5) and does not end below; otherwise neither")
def layer_sparsity(ctx) -> Measured:
    return _layer_claim(ctx, "sparsity_mean", "fraction of non-zero ISTA outputs")


# --- the compression-step variants of the SRR study ------------------------------------------------------------------

VARIANTS = {"crate_conceptual": "CRATE-C", "crate_negative": "CRATE-N", "crate_transpose": "CRATE-T",
            "crate": "CRATE"}


@register_claim(
    "crate-c-init", minutes=0.1,
    title="CRATE-C's compression step increases R^c at initialisation", source=STUDY, kind="shape",
    protocol={"tiny": {"size": "nano", "data": "digits", "samples": 64, "model_args": {"dim": 16, "heads": 2}},
              "cpu": {"size": "nano", "data": "digits", "samples": 512, "model_args": {}},
              "paper": {"size": "tiny", "data": "cifar10", "samples": 1000, "model_args": {}}},
    published="R^c after the compression step > R^c before it, at initialisation (a second-order expansion "
              "explains it)",
    cpu="crate_conceptual_nano (and, for comparison, crate_nano and crate_negative_nano) at initialisation on the "
        "359 digits test images, LayerNorm removed as in the study; per layer R^c(Z; U) of the block input and of "
        "the block after its compression step (residual included), against that layer's subspaces, ε = √(p/N); "
        "averaged over the layers. The verdict is on R^c as the paper measures it; the same change with the tokens "
        "L2-normalised per head is shown next to it as an explanation (it tells a change of scale from a change of "
        "shape) and does not enter the verdict",
    paper="crate_conceptual_tiny at initialisation on 1,000 CIFAR-10 images (--data cifar10:DIR)",
    rule="a seed holds when CRATE-C's mean change of R^c over its layers is positive; the opposite when negative")
def crate_c_init(ctx) -> Measured:
    import math

    from ..analysis.complexity import without_layernorm
    from ..analysis.layers import EPS
    from ..measures import subspace_compression

    p = ctx.params
    spec = ctx.data_spec(p["data"])
    data = data_for(spec)
    x = data.x_test[:p["samples"]]

    def change(name: str, seed: int, normalize: bool) -> float:
        model = _initial(f"{name}_{p['size']}", data, p["model_args"], seed)
        deltas = []
        with torch.no_grad(), without_layernorm(model):
            for rec, u in zip(model.trace(x), model.subspaces()):
                eps = EPS if normalize else math.sqrt(u.shape[-1] / rec["input"].shape[-2])
                rc = [subspace_compression(rec[k].double(), u.double(), eps, normalize=normalize).mean()
                      for k in ("input", "mid")]
                deltas.append(float(rc[1] - rc[0]))
        return sum(deltas) / len(deltas)

    names = ("crate_conceptual", "crate", "crate_negative")
    deltas = {n: [change(n, s, False) for s in range(ctx.seeds)] for n in names}
    scale_free = {n: [change(n, s, True) for s in range(ctx.seeds)] for n in names}
    per_seed = [True if d > 0 else False if d < 0 else None for d in deltas["crate_conceptual"]]
    figure = ", ".join(f"{VARIANTS[n]} {shown(v, 3)}" for n, v in deltas.items())
    control = ", ".join(f"{VARIANTS[n]} {shown(v, 3)}" for n, v in scale_free.items())
    return Measured(per_seed, f"mean ΔR^c per layer at initialisation: {figure} (tokens L2-normalised per head, "
                              f"ε = 0.1, which removes the change of scale: {control})",
                    {"delta_rc": deltas, "delta_rc_normalised": scale_free, "data": spec, "size": p["size"]})


@register_claim(
    "variant-order", minutes=1.2,
    title="Accuracy ranks CRATE-C < CRATE-N < CRATE-T ≈ CRATE", source=STUDY, kind="shape",
    protocol={"tiny": {"size": "nano", "data": "digits", "epochs": 1, "model_args": {"dim": 16, "heads": 2},
                       "batch": 64, "lr": 1e-3, "close": 0.02},
              "cpu": {"size": "nano", "data": "digits", "epochs": 10, "model_args": {}, "batch": 64, "lr": 1e-3,
                      "close": 0.02},
              "paper": {"size": "tiny", "data": "cifar10", "epochs": 200, "model_args": {}, "batch": 128,
                        "lr": 1e-4, "close": 0.01}},
    published="CRATE-C < CRATE-N < CRATE-T ≈ CRATE (test accuracy, CIFAR-10)",
    cpu="crate_conceptual_nano, crate_negative_nano, crate_transpose_nano and crate_nano, 10 epochs on digits "
        "(AdamW lr 1e-3, batch 64), 3 seeds; '≈' means within 2 points of accuracy",
    paper="the *_tiny variants, 200 epochs on CIFAR-10 (Adam lr 1e-4, batch 128; --data cifar10:DIR); '≈' within 1 "
          "point",
    rule="a seed holds when C < N < T and N < CRATE with |T − CRATE| within the protocol's closeness; the opposite "
         "when C > N > max(T, CRATE); otherwise neither")
def variant_order(ctx) -> Measured:
    p = ctx.params
    spec = ctx.data_spec(p["data"])
    data = data_for(spec)

    def accuracy(name: str, seed: int) -> dict:
        model, _ = fit(ctx, f"{name}-s{seed}", f"{name}_{p['size']}", data, seed=seed, model_args=p["model_args"],
                       train={"batch_size": p["batch"], "lr": p["lr"]}, objective_args={"epochs": p["epochs"]})
        return {"accuracy": evaluate(model, data.x_test, data.y_test)[1]}

    acc = {n: [ctx.step(f"variants/{n}-s{s}", lambda n=n, s=s: accuracy(n, s))["accuracy"] for s in range(ctx.seeds)]
           for n in VARIANTS}
    per_seed = []
    for s in range(ctx.seeds):
        c, n, t, a = (acc[k][s] for k in VARIANTS)
        if c < n < t and n < a and abs(t - a) <= p["close"]:
            per_seed.append(True)
        elif c > n > max(t, a):
            per_seed.append(False)
        else:
            per_seed.append(None)
    figure = ", ".join(f"{label} {shown(acc[k])}" for k, label in VARIANTS.items())
    return Measured(per_seed, f"test accuracy: {figure}", {"accuracy": acc, "data": spec},
                    plot={"title": "test accuracy per seed", "x": "seed", "y": "test accuracy",
                          "series": {label: [list(range(ctx.seeds)), acc[k]] for k, label in VARIANTS.items()}})
