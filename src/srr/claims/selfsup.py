"""Claims about self-supervised white-box learning and emergent segmentation: SimDINO's stability over DINO, and
CRATE's attention masks against a ViT's."""
from __future__ import annotations

from .base import Measured, register_claim
from .common import data_for, fit, shown

SIMDINO = "Wu, Zhang, Pai, Wang, Singh, Yang, Gao, Ma, Simplifying DINO via Coding Rate Regularization (2025)"
SEGMENT = "Yu et al., Emergence of Segmentation with Minimalistic White-Box Transformers (2023)"


@register_claim(
    "simdino-stability", minutes=4.0,
    title="SimDINO collapses in fewer settings than DINO", source=SIMDINO, kind="shape",
    protocol={"tiny": {"data": "digits", "train": 128, "test": 64, "epochs": 1, "lrs": [2e-3], "batches": [64],
                       "model_args": {"dim": 16, "depth": 1, "heads": 2, "patch_size": 4}, "prototypes": 64},
              "cpu": {"data": "idx", "train": 1000, "test": 500, "epochs": 5, "lrs": [5e-4, 2e-3],
                      "batches": [64, 256], "model_args": {"dim": 32, "depth": 2, "heads": 2, "patch_size": 7},
                      "prototypes": 256},
              "paper": {"data": "folder", "train": 1_281_167, "test": 50_000, "epochs": 100, "lrs": [5e-4, 2e-3],
                        "batches": [256, 1024], "model_args": {}, "prototypes": 65_536}},
    published="SimDINO is more stable across hyper-parameters than DINO and needs none of its tricks against "
              "collapse (ImageNet-1K, ViT-B/16: k-NN 74.9 % against DINO's 72.9 %)",
    cpu="vit_nano (width 32, depth 2, 2 heads, patch 7) pre-trained 5 epochs on the first 1,000 images of the MNIST "
        "folder by DINO (centring and sharpening on, 256 prototypes) and by SimDINO (its default ε), over the grid "
        "lr {5e-4, 2e-3} × batch {64, 256}; a run has collapsed when its test features' effective rank is below 2 "
        "or their mean cosine above 0.95; 3 seeds",
    paper="ViT-B/16 on ImageNet-1K (--data folder:DIR), 100 epochs, the same grid and rule, on a GPU",
    rule="a seed holds when SimDINO collapses in fewer cells of the grid than DINO; the opposite when in more; "
         "the same count is neither")
def simdino_stability(ctx) -> Measured:
    p = ctx.params
    spec = ctx.data_spec(p["data"])
    data = data_for(spec).first(p["train"], p["test"])
    model = "vit_nano"
    common = {"epochs": p["epochs"], "local_crops": 2, "head_hidden": 128, "head_dim": 64, "knn_bank": 0,
              "probe": False}

    def run(method: str, lr: float, batch: int, seed: int) -> dict:
        extra = {"prototypes": p["prototypes"]} if method == "dino" else {}
        _, s = fit(ctx, f"ssl-{method}-{lr}-{batch}-s{seed}", model, data, seed=seed, model_args=p["model_args"],
                   train={"lr": lr, "batch_size": batch}, objective=method, objective_args={**common, **extra})
        return {"knn": s["test_knn"], "effective_rank": s["test_effective_rank"],
                "mean_cosine": s["test_mean_cosine"]}

    cells = [(lr, b) for lr in p["lrs"] for b in p["batches"]]
    runs = {(m, lr, b, s): ctx.step(f"ssl/{m}-{lr}-{b}-s{s}", lambda m=m, lr=lr, b=b, s=s: run(m, lr, b, s))
            for s in range(ctx.seeds) for m in ("dino", "simdino") for lr, b in cells}
    collapsed = {k: r["effective_rank"] < 2 or r["mean_cosine"] > 0.95 for k, r in runs.items()}
    count = {(m, s): sum(collapsed[(m, lr, b, s)] for lr, b in cells) for m in ("dino", "simdino")
             for s in range(ctx.seeds)}
    per_seed = [True if count[("simdino", s)] < count[("dino", s)] else
                False if count[("simdino", s)] > count[("dino", s)] else None for s in range(ctx.seeds)]
    knn = {m: [runs[(m, lr, b, s)]["knn"] for s in range(ctx.seeds) for lr, b in cells] for m in ("dino", "simdino")}
    n = len(cells) * ctx.seeds
    figure = (f"collapsed runs: DINO {sum(count[('dino', s)] for s in range(ctx.seeds))}/{n}, SimDINO "
              f"{sum(count[('simdino', s)] for s in range(ctx.seeds))}/{n}; k-NN over the grid: DINO "
              f"{shown(knn['dino'])}, SimDINO {shown(knn['simdino'])}")
    return Measured(per_seed, figure, {"runs": [{"method": m, "lr": lr, "batch": b, "seed": s, **r,
                                                 "collapsed": collapsed[(m, lr, b, s)]}
                                                for (m, lr, b, s), r in runs.items()], "data": spec})


@register_claim(
    "crate-segmentation", minutes=3.0,
    title="CRATE trained to classify segments objects in its attention, better than a ViT", source=SEGMENT,
    kind="shape",
    protocol={"tiny": {"scenes": "scenes:n=96,test=32,size=16,objects=1,min_glyph=8,max_glyph=12,background=noise",
                       "epochs": 1, "images": 16, "batch": 32, "lr": 2e-3,
                       "vit": {"dim": 16, "depth": 1, "heads": 2, "patch_size": 4, "pool": "cls"}, "crate_dim": 32},
              "cpu": {"scenes": "scenes:n=3000,test=300,size=24,objects=1,min_glyph=12,max_glyph=16,"
                                "background=noise",
                      "epochs": 15, "images": 128, "batch": 64, "lr": 2e-3,
                      "vit": {"dim": 48, "depth": 2, "heads": 4, "patch_size": 4, "pool": "cls"}, "crate_dim": 92},
              "paper": {"scenes": "scenes:n=50000,test=1000,size=64", "epochs": 100, "images": 1000, "batch": 256,
                        "lr": 1e-3, "vit": {"dim": 192, "depth": 12, "heads": 3, "patch_size": 8, "pool": "cls"},
                        "crate_dim": 384}},
    published="the [CLS] attention of a supervised CRATE segments objects (ImageNet; masks by the 60 %-mass rule, "
              "Jaccard against ground truth), with cleaner maps than a ViT's",
    cpu="crate_nano (width 92) and vit_nano (width 48; both depth 2, 4 heads, patch 4, [CLS] pooling, ≈ 58k and "
        "60k parameters) trained 15 epochs to classify scenes of one digit glyph on noise (3,000 / 300, 24 × 24 "
        "pixels, exact masks); per head of the last layer the 60 %-mass attention mask on 128 test scenes, Jaccard "
        "against the glyph's mask in pixels, best head; CRATE at initialisation as the control; 3 seeds",
    paper="the same scenes at 64 × 64 (50,000 images), width 384 against a ViT-Tiny of equal size, 100 epochs",
    rule="a seed holds when trained CRATE's best-head Jaccard is above the trained ViT's and above CRATE's at "
         "initialisation; the opposite when below the ViT's; otherwise neither")
def crate_segmentation(ctx) -> Measured:
    import torch

    from ..analysis.runs import Source
    from ..analysis.segmentation import segmentation_report
    from ..models import count_parameters, create_model

    p = ctx.params
    data = data_for(p["scenes"])
    arms = {"CRATE": ("crate_nano", {**p["vit"], "dim": p["crate_dim"]}), "ViT": ("vit_nano", p["vit"])}

    def measure(arm: str, trained: bool, seed: int) -> dict:
        name, args = arms[arm]
        accuracy = None
        if trained:
            model, s = fit(ctx, f"seg-{arm}-s{seed}", name, data, seed=seed, model_args=args,
                           train={"lr": p["lr"], "batch_size": p["batch"]}, objective_args={"epochs": p["epochs"]})
            accuracy = s["test_accuracy"]
        else:
            torch.manual_seed(seed)
            model = create_model(name, **{**data.model_overrides(), **args}).eval()
        out = ctx.workdir / "segment" / f"{arm}-{'trained' if trained else 'init'}-s{seed}"
        r = segmentation_report(Source(model, name, args, "model", "image"), data, out, p["images"])
        return {"jaccard": r["jaccard_best_head"], "test_accuracy": accuracy, "parameters": count_parameters(model)}

    rows = {(a, t, s): ctx.step(f"seg/{a}-{t}-s{s}", lambda a=a, t=t, s=s: measure(a, t, s))
            for s in range(ctx.seeds) for a, t in (("CRATE", True), ("ViT", True), ("CRATE", False))}
    per_seed = []
    for s in range(ctx.seeds):
        crate, vit, init = rows[("CRATE", True, s)], rows[("ViT", True, s)], rows[("CRATE", False, s)]
        per_seed.append(True if crate["jaccard"] > vit["jaccard"] and crate["jaccard"] > init["jaccard"] else
                        False if crate["jaccard"] < vit["jaccard"] else None)
    j = {k: [rows[(*k, s)]["jaccard"] for s in range(ctx.seeds)] for k in (("CRATE", True), ("ViT", True),
                                                                         ("CRATE", False))}
    acc = {a: [rows[(a, True, s)]["test_accuracy"] for s in range(ctx.seeds)] for a in ("CRATE", "ViT")}
    figure = (f"best-head Jaccard: CRATE {shown(j[('CRATE', True)])} (at initialisation "
              f"{shown(j[('CRATE', False)])}), ViT {shown(j[('ViT', True)])}; test accuracy CRATE "
              f"{shown(acc['CRATE'])}, ViT {shown(acc['ViT'])}; parameters CRATE "
              f"{rows[('CRATE', True, 0)]['parameters']:,}, ViT {rows[('ViT', True, 0)]['parameters']:,}")
    return Measured(per_seed, figure, {"runs": [{"arm": a, "trained": t, "seed": s, **r}
                                                for (a, t, s), r in rows.items()], "scenes": p["scenes"]})
