"""Claims of ReduNet (Chan, Yu, You, Qi, Wright, Ma, JMLR 2022): ΔR rises layer by layer; cyclic-shift invariance."""
from __future__ import annotations

import torch

from .base import Measured, register_claim
from .common import data_for, shown

SOURCE = "Chan et al., ReduNet: A White-box Deep Network from the Principle of Maximizing Rate Reduction (JMLR 2022)"


@register_claim(
    "redunet-delta-r", minutes=1.0,
    title="ReduNet's rate reduction ΔR rises at every layer", source=SOURCE, kind="shape",
    protocol={"tiny": {"data": "digits", "per_class": 10, "layers": 4},
              "cpu": {"data": "idx", "per_class": 50, "layers": 30},
              "paper": {"data": "idx", "per_class": 500, "layers": 30}},
    published="ΔR(Z^ℓ) increases monotonically with ℓ (training features, MNIST and synthetic mixtures)",
    cpu="a vector ReduNet (η = 0.5, ε² = 0.1, λ = 500) constructed from 50 training images per class of the MNIST "
        "folder (a different draw per seed), 30 layers; ΔR of the training features with their labels after "
        "every layer",
    paper="the same with 500 images per class (the paper's MNIST setting), on a GPU if available",
    rule="a seed holds when ΔR rises at every layer; the opposite when the last layer's ΔR is below the input's")
def redunet_delta_r(ctx) -> Measured:
    from ..analysis.redunet import build_for_data, per_class_subset
    from ..redunet.rates import redunet_rates

    p = ctx.params
    spec = ctx.data_spec(p["data"])
    data = data_for(spec)

    def curve(seed: int) -> dict:
        pick = per_class_subset(data.y_train, p["per_class"], seed)
        x, y = data.unnormalize(data.x_train[pick]), data.y_train[pick]
        net = build_for_data(data, p["layers"], seed=seed)
        rows = []
        net.build(x, y, callback=lambda ell, z, pi: rows.append(
            redunet_rates(z, y, net.eps, data.num_classes)["delta_R"]))
        return {"delta_R": rows}

    curves = [ctx.step(f"redunet/dr-s{s}", lambda s=s: curve(s))["delta_R"] for s in range(ctx.seeds)]
    per_seed = []
    for c in curves:
        rises = all(b > a for a, b in zip(c, c[1:]))
        per_seed.append(True if rises else False if c[-1] < c[0] else None)
    falls = [sum(b <= a for a, b in zip(c, c[1:])) for c in curves]
    first, last = shown([c[0] for c in curves], 2), shown([c[-1] for c in curves], 2)
    figure = (f"ΔR input → layer {p['layers']}: {first} → {last}"
              f"; layers where ΔR did not rise, per seed: {falls}")
    return Measured(per_seed, figure, {"delta_R": curves, "data": spec},
                    plot={"title": "ΔR of the training features", "x": "layer", "y": "ΔR",
                          "series": {f"seed {s}": [list(range(len(c))), c] for s, c in enumerate(curves)}})


@register_claim(
    "redunet-shift-invariance", minutes=0.1,
    title="The shift-invariant ReduNet is exactly equivariant (and its class estimate "
    "invariant) to cyclic shifts", source=SOURCE, kind="shape",
    protocol={"tiny": {"data": "digits", "per_class": 5, "layers": 2, "channels": 4, "shifts": 3, "tol": 1e-4},
              "cpu": {"data": "digits", "per_class": 30, "layers": 5, "channels": 8, "shifts": 10, "tol": 1e-4},
              "paper": {"data": "idx", "per_class": 100, "layers": 20, "channels": 5, "shifts": 28, "tol": 1e-4}},
    published="features of a cyclically shifted input are the shifted features; classification invariant to "
              "every cyclic shift",
    cpu="a 2-D shift-invariant ReduNet (random circular lift to 8 channels, 3 × 3 filters, 5 layers) constructed "
        "from 30 digits per class; 10 random cyclic shifts of the test images; relative error between "
        "features(shift(x)) and shift(features(x)), and the agreement of the class estimates",
    paper="MNIST digits, 100 per class, 20 layers, every shift along one axis",
    rule="a seed holds when the relative error is below 1e-4 and every class estimate is unchanged; the opposite "
         "when neither")
def redunet_shift_invariance(ctx) -> Measured:
    from ..analysis.redunet import build_for_data, per_class_subset

    p = ctx.params
    spec = ctx.data_spec(p["data"])
    data = data_for(spec)

    def check(seed: int) -> dict:
        pick = per_class_subset(data.y_train, p["per_class"], seed)
        net = build_for_data(data, p["layers"], "conv", channels=p["channels"], seed=seed)
        net.build(data.unnormalize(data.x_train[pick]), data.y_train[pick])
        x = data.unnormalize(data.x_test[:200])
        z, _ = net.transform(x)
        pred = net.predict(x)
        g = torch.Generator().manual_seed(seed)
        h, w = x.shape[-2:]
        errors, agree = [], []
        for _ in range(p["shifts"]):
            dy, dx = int(torch.randint(1, h, (1,), generator=g)), int(torch.randint(1, w, (1,), generator=g))
            zs, _ = net.transform(torch.roll(x, (dy, dx), (-2, -1)))
            expected = torch.roll(z, (dy, dx), (-2, -1))
            errors.append(float((zs - expected).norm() / expected.norm()))
            agree.append(float((net.predict(torch.roll(x, (dy, dx), (-2, -1))) == pred).double().mean()))
        return {"max_relative_error": max(errors), "min_agreement": min(agree)}

    checks = [ctx.step(f"redunet/shift-s{s}", lambda s=s: check(s)) for s in range(ctx.seeds)]
    per_seed = []
    for c in checks:
        ok = c["max_relative_error"] < p["tol"], c["min_agreement"] == 1.0
        per_seed.append(True if all(ok) else False if not any(ok) else None)
    figure = (f"max relative error {max(c['max_relative_error'] for c in checks):.1e} over "
              f"{p['shifts']} shifts × {ctx.seeds} seeds; class estimates unchanged for "
              f"{100 * min(c['min_agreement'] for c in checks):.1f} % of test images at worst")
    return Measured(per_seed, figure, {"checks": checks, "data": spec})
