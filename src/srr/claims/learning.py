"""Claims about what training learns: MCR²'s robustness to label noise, the deep neural feature ansatz."""
from __future__ import annotations

from .base import Measured, register_claim
from .common import data_for, fit, mean_std, shown

MCR2 = "Yu, Chan, You, Song, Ma, Learning Diverse and Discriminative Representations via the Principle of " \
       "Maximal Coding Rate Reduction (NeurIPS 2020), label-noise table"
ANSATZ = "Radhakrishnan, Beaglehole, Pandit, Belkin, Mechanism for feature learning in neural networks and " \
         "backpropagation-free machine learning models (Science 2024)"


@register_claim(
    "mcr2-label-noise", minutes=1.6,
    title="MCR² features lose less accuracy than cross-entropy when labels are corrupted",
    source=MCR2, kind="shape",
    protocol={"tiny": {"model": "crate_nano", "data": "digits", "ratio": 0.3, "epochs": 1,
                       "model_args": {"dim": 16, "depth": 1, "heads": 2}},
              "cpu": {"model": "crate_nano", "data": "digits", "ratio": 0.3, "epochs": 15, "model_args": {}},
              "paper": {"model": "crate_tiny", "data": "cifar10", "ratio": 0.3, "epochs": 500, "model_args": {}}},
    published="with 10–50 % of the training labels corrupted, MCR²'s accuracy falls far less than cross-entropy's "
              "(ResNet-18, CIFAR-10)",
    cpu="crate_nano on digits, clean labels and 30 % of the training labels replaced by random ones (the test "
        "labels clean), 15 epochs each: cross-entropy (batch 64, the head's accuracy) and MCR² (batch 256, "
        "ε² = 0.5, nearest-subspace accuracy of the features); drop = clean − corrupted accuracy; 3 seeds",
    paper="crate_tiny on CIFAR-10 (--data cifar10:DIR), 500 epochs, the same arms",
    rule="a seed holds when MCR²'s drop is smaller than cross-entropy's by more than 2 test images; the opposite "
         "when larger by more than 2; closer is a tie (neither)")
def mcr2_label_noise(ctx) -> Measured:
    from ..data import ImageData, corrupt_labels

    p = ctx.params
    spec = ctx.data_spec(p["data"])
    data = data_for(spec)

    def arm(objective: str, ratio: float, seed: int) -> dict:
        noisy = corrupt_labels(data.y_train, ratio, data.num_classes, seed=seed + 10) if ratio else data.y_train
        d = ImageData.from_tensors(data.name, data.spec, data.x_train, noisy, data.x_test, data.y_test,
                                   data.num_classes, mean=data.mean, std=data.std)
        if objective == "mcr2":
            _, s = fit(ctx, f"noise-mcr2-{ratio}-s{seed}", p["model"], d, seed=seed, model_args=p["model_args"],
                       train={"batch_size": 256}, objective="mcr2",
                       objective_args={"epochs": p["epochs"], "eval_every": p["epochs"]})
            return {"accuracy": s["test_nearest_subspace"]}
        _, s = fit(ctx, f"noise-ce-{ratio}-s{seed}", p["model"], d, seed=seed, model_args=p["model_args"],
                   train={"batch_size": 64}, objective_args={"epochs": p["epochs"]})
        return {"accuracy": s["test_accuracy"]}

    acc = {(o, r): [ctx.step(f"noise/{o}-{r}-s{s}", lambda o=o, r=r, s=s: arm(o, r, s))["accuracy"]
                    for s in range(ctx.seeds)] for o in ("ce", "mcr2") for r in (0.0, p["ratio"])}
    drop = {o: [a - b for a, b in zip(acc[(o, 0.0)], acc[(o, p["ratio"])])] for o in ("ce", "mcr2")}
    margin = 2 / len(data.y_test)  # a difference of fewer test images is a tie
    per_seed = [True if c - m > margin else False if m - c > margin else None for c, m in zip(drop["ce"], drop["mcr2"])]
    figure = (f"at {p['ratio']:.0%} corrupted labels: cross-entropy {shown(acc[('ce', 0.0)])} → "
              f"{shown(acc[('ce', p['ratio'])])} (drop {shown(drop['ce'])}), MCR² {shown(acc[('mcr2', 0.0)])} → "
              f"{shown(acc[('mcr2', p['ratio'])])} (drop {shown(drop['mcr2'])})")
    return Measured(per_seed, figure, {"accuracy": {f"{o}@{r}": v for (o, r), v in acc.items()}, "drop": drop,
                                       "data": spec})


@register_claim(
    "feature-ansatz", minutes=1.6,
    title="Trained weights follow the AGOP: Pearson(WᵀW, AGOP^½) ≈ 0.74", source=ANSATZ,
    kind="value", value=0.74, tolerance=0.05, signed=True,
    protocol={"tiny": {"data": "digits", "model": {"digits": "mlp_nano"}, "model_args": {"width": 32},
                       "epochs": 1, "samples": 100},
              "cpu": {"data": "idx", "model": {"idx": "mlp_micro", "digits": "mlp_nano"}, "model_args": {},
                      "epochs": 10, "samples": 1000},
              "paper": {"data": "idx", "model": {"idx": "mlp_micro"}, "model_args": {}, "epochs": 100,
                        "samples": 1000}},
    published="Pearson correlation of WᵀW with AGOP^½ ≈ 0.74 (trained MLPs on MNIST, averaged over layers)",
    cpu="mlp_micro (bias-free ReLU, width 1024, 3 hidden layers) trained 10 epochs on the MNIST folder by plain SGD "
        "(lr 0.1, batch 128) on the square loss of one-hot labels; Pearson(WᵀW, AGOP^½) of each hidden layer's "
        "weight on 1,000 training images (uncentred gradients of all outputs), averaged over the layers; the same "
        "at initialisation as the control (reproduced also needs the trained value above it in every seed); 3 seeds",
    paper="the same, trained to convergence (100 epochs), on a GPU if available")
def feature_ansatz(ctx) -> Measured:
    from ..analysis.ansatz import feature_ansatz as measure

    p = ctx.params
    spec = ctx.data_spec(p["data"])
    data = data_for(spec)
    name = p["model"][spec.partition(":")[0]]
    x = data.x_train[:p["samples"]]

    def correlations(seed: int) -> dict:
        from .layers import _initial

        model, summary = fit(ctx, f"ansatz-s{seed}", name, data, seed=seed, model_args=p["model_args"],
                             train={"optimizer": "sgd", "beta1": 0.0, "lr": 0.1, "batch_size": 128,
                                    "weight_decay": 0.0, "min_lr_ratio": 1.0},
                             objective="mse", objective_args={"epochs": p["epochs"], "warmup_epochs": 0})
        init = _initial(name, data, p["model_args"], seed)
        hidden = lambda rows: [r["corr_half"] for r in rows if r["corr_half"] is not None][:-1]  # noqa: E731
        return {"trained": hidden(measure(model, x)), "init": hidden(measure(init, x)),
                "test_accuracy": summary.get("test_accuracy")}

    runs = [ctx.step(f"ansatz/s{s}", lambda s=s: correlations(s)) for s in range(ctx.seeds)]
    per_seed = [mean_std(r["trained"])[0] if r["trained"] else None for r in runs]
    init = [mean_std(r["init"])[0] if r["init"] else None for r in runs]
    if None in per_seed or None in init:
        return Measured(per_seed, "no hidden layer with a defined correlation", {"runs": runs, "model": name})
    figure = (f"mean over hidden layers {shown(per_seed)} (at initialisation {shown(init)}); test accuracy "
              f"{shown([r['test_accuracy'] for r in runs])}")
    above = all(t > i for t, i in zip(per_seed, init))
    return Measured(per_seed, figure, {"runs": runs, "model": name, "data": spec},
                    also={"above the initialisation control in every seed": above})
