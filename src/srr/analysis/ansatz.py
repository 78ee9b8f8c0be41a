"""The Deep Neural Feature Ansatz and its tight-frame form, for every linear map of any network (see docs/analysis.md).

For a linear map ``p = W h (+ b)`` inside a network f with outputs f_1 … f_c (logits), let g_c(x) = ∂f_c/∂p be the
gradient of output c with respect to that map's output (the *pre-activation* gradient). Then

    G   = (1/n) Σ_x Σ_c Σ_t g_c g_cᵀ                  (k × k, k = rows of W; t runs over tokens, one for an MLP)
    AGOP = Wᵀ G W = (1/n) Σ_x Σ_c Σ_t ∇_h f_c ∇_h f_cᵀ   (the gradient with respect to h *through this map*)

All c outputs are summed; for token models the per-token gradients are summed over the tokens of a
sample (as for convolutional layers) and averaged over samples. For a plain MLP, h_i enters f only through W_i, so
this is exactly the AGOP of the ansatz; in a transformer it leaves out the paths that bypass the map (the residual,
the other uses of the same input) — the ansatz is a statement about what this map's weights learned.

Variant reported (see docs/analysis.md): **Pearson** correlation (mean-subtracted, flattened matrices) of
the neural feature matrix ``WᵀW`` with ``AGOP^α`` (α = ½ the headline, a sweep 0.25 … 1), **uncentred** gradients of
the **logits**, the weights W themselves (``w0`` gives the W − W₀ variant). Tight-frame statistics of G:
``‖G/tr G − I/k‖_F`` (0 for a perfect tight frame; ``frame_distance_normalised`` divides by its largest possible
value √(1 − 1/k), reached by a rank-one G), ``λ_min/λ_max`` of G, and the Pearson correlation of G with ``W Wᵀ``
(the power-½ ansatz holds iff G ∝ W Wᵀ, the power-1 ansatz iff G ∝ I, for W of full row rank).

The linear maps are found by intercepting ``torch.nn.functional.linear`` (which ``nn.Linear`` also calls) while the
model runs, so any model works — MLPs, MSSA's ``qkv`` and ``to_out``, ISTA's dictionary (used as D and as Dᵀ), heads —
with no per-model code. One forward and c backward passes per batch give G of every map at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError

__all__ = ["LinearMaps", "gradient_moments", "pearson", "matrix_power", "tight_frame_statistics", "plot_ansatz",
           "ansatz_statistics", "feature_ansatz", "ansatz_report", "ALPHAS"]

ALPHAS = (0.25, 0.5, 0.75, 1.0)


@dataclass
class _Call:
    name: str
    weight: Tensor  # (k, d_in), as used in this call (already transposed for a Wᵀ use)
    output: Tensor  # (…, k)


class LinearMaps(TorchFunctionMode):
    """Context that records every ``F.linear(h, W)`` whose W is a named parameter of ``model`` (or its transpose).

    Calls are named by the parameter (``transformer.layers.0.0.fn.qkv.weight``), ``.T`` for a transposed use and
    ``#2``, ``#3`` … for later uses of the same weight in one forward pass.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.names = {id(p): n for n, p in model.named_parameters()}
        self.calls: list[_Call] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is F.linear:
            w = args[1] if len(args) > 1 else kwargs.get("weight")
            name = self.names.get(id(w))
            base = getattr(w, "_base", None)
            if name is None and base is not None and id(base) in self.names and w.dim() == 2 \
                    and tuple(w.shape) == tuple(base.shape[::-1]) and torch.equal(w, base.t()):
                name = self.names[id(base)] + ".T"
            if name is not None:
                used = sum(1 for c in self.calls if c.name.split("#")[0] == name)
                self.calls.append(_Call(name if not used else f"{name}#{used + 1}", w, out))
        return out


def gradient_moments(model: nn.Module, x: Tensor, batch_size: int = 250, progress: bool = False) -> dict:
    """Per linear map: ``{"weight": W (k, d_in), "G": (1/n) Σ g gᵀ (k × k, float64), "C": the centred
    covariance, "samples": n}``.

    ``C = (1/n) Σ_x Σ_c Σ_t (g_c − ḡ_c)(g_c − ḡ_c)ᵀ`` with ḡ_c the mean gradient of output c over all samples and
    tokens (``C = G − (1/(n·r)) Σ_c s_c s_cᵀ``, s_c the sum of the r = n·tokens gradients of output c).
    ``x`` is a batch of model inputs; the model runs in eval mode; outputs are the logits (B, c).
    """
    if len(x) == 0:
        raise DataError("the feature ansatz needs at least one sample")
    model.eval()
    device = next(model.parameters()).device
    moments: dict[str, dict] = {}
    with torch.enable_grad(), tqdm(total=len(x), disable=not progress, desc="AGOP", unit="sample") as bar:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            with LinearMaps(model) as rec:
                logits = model(xb)
            if logits.dim() != 2:
                raise ConfigError(f"the ansatz needs outputs of shape (batch, classes), got {tuple(logits.shape)}")
            calls = [c for c in rec.calls if c.output.requires_grad]
            if not calls:
                raise ConfigError(f"{type(model).__name__} applies no linear map to a named parameter")
            outs = [c.output for c in calls]
            eye = torch.eye(logits.shape[1], dtype=logits.dtype, device=device)
            seeds = eye[:, None, :].expand(-1, *logits.shape)  # one backward per output c, batched
            grads = torch.autograd.grad(logits, outs, seeds, is_grads_batched=True, allow_unused=True)
            for call, g in zip(calls, grads):
                if g is None:
                    continue
                per_output = g.reshape(g.shape[0], -1, g.shape[-1])  # (c, B·tokens, k)
                g = g.reshape(-1, g.shape[-1])
                entry = moments.setdefault(call.name, {"weight": call.weight.detach().cpu(), "G": 0.0, "S": 0.0,
                                                       "rows": 0})
                entry["G"] = entry["G"] + (g.mT @ g).double().cpu()
                entry["S"] = entry["S"] + per_output.sum(1).double().cpu()
                entry["rows"] += per_output.shape[1]
            bar.update(len(xb))
    for entry in moments.values():
        s, rows = entry.pop("S"), entry.pop("rows")
        entry["C"] = (entry["G"] - s.mT @ s / rows) / len(x)
        entry["G"] = entry["G"] / len(x)
        entry["samples"] = len(x)
    return moments


def pearson(a: Tensor, b: Tensor) -> float | None:
    """Pearson correlation of two matrices flattened (mean-subtracted); ``None`` when either is constant."""
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return None
    return float((a @ b) / (na * nb))


def _cosine(a: Tensor, b: Tensor) -> float | None:
    a, b = a.flatten().double(), b.flatten().double()
    na, nb = a.norm(), b.norm()
    return None if na == 0 or nb == 0 else float((a @ b) / (na * nb))


def matrix_power(m: Tensor, alpha: float) -> Tensor:
    """``M^α`` of a symmetric positive semi-definite matrix by its eigendecomposition (eigenvalues clamped at 0)."""
    m = m.double()
    vals, vecs = torch.linalg.eigh(0.5 * (m + m.mT))
    return (vecs * vals.clamp_min(0.0).pow(alpha)) @ vecs.mT


def tight_frame_statistics(G: Tensor, W: Tensor | None = None) -> dict:
    """Tight-frame statistics of a second-moment matrix G (k × k) of gradients, optionally against W (k × d_in).

    ``frame_distance = ‖G/tr G − I/k‖_F`` (0 iff G ∝ I), ``frame_distance_normalised`` (divided by √(1 − 1/k), so a
    rank-one G gives 1), ``eig_ratio = λ_min/λ_max`` (1 iff G ∝ I), ``corr_G_WWt`` = Pearson(G, W Wᵀ).
    """
    G = G.double()
    if G.dim() != 2 or G.shape[0] != G.shape[1]:
        raise ConfigError(f"G must be square, got {tuple(G.shape)}")
    k = G.shape[0]
    tr = float(torch.trace(G))
    if not tr > 0:
        return {"frame_distance": None, "frame_distance_normalised": None, "eig_ratio": None, "corr_G_WWt": None,
                "note": "all gradients are zero"}
    dist = float(torch.linalg.matrix_norm(G / tr - torch.eye(k, dtype=G.dtype) / k))
    eig = torch.linalg.eigvalsh(0.5 * (G + G.mT))
    out = {"frame_distance": dist, "frame_distance_normalised": dist / (1 - 1 / k) ** 0.5 if k > 1 else 0.0,
           "eig_ratio": float(eig[0].clamp_min(0) / eig[-1])}
    out["corr_G_WWt"] = pearson(G, W.double() @ W.double().mT) if W is not None else None
    return out


def ansatz_statistics(W: Tensor, G: Tensor, alphas=ALPHAS, w0: Tensor | None = None) -> dict:
    """Ansatz and tight-frame statistics of one map from its weight W (k × d_in) and pre-activation moment G."""
    W = W.double()
    if G.shape != (W.shape[0], W.shape[0]):
        raise ConfigError(f"G of shape {tuple(G.shape)} does not fit W of shape {tuple(W.shape)}")
    agop = W.mT @ G.double() @ W
    wf = W - w0.double() if w0 is not None else W
    nfm = wf.mT @ wf
    corr = {str(a): pearson(nfm, matrix_power(agop, a)) for a in alphas}
    half = matrix_power(agop, 0.5)
    return {"shape": list(W.shape), "corr": corr, "corr_half": pearson(nfm, half), "cosine_half": _cosine(nfm, half),
            **tight_frame_statistics(G, W)}


def _kind(name: str, model: nn.Module) -> str:
    """attention / dictionary / mlp / embedding / head / other, from the modules that own the weight."""
    path = name.split("#")[0].removesuffix(".T").split(".")[:-1]
    mod, owners = model, [type(model).__name__.lower()]
    for part in path:
        mod = getattr(mod, part, None)
        if mod is None:
            break
        owners.append(type(mod).__name__.lower())
    text = " ".join(owners + path).lower()
    for kind, keys in (("attention", ("attention", "mssa", "tssa", "qkv", "to_out", "attn")),
                       ("dictionary", ("ista", "odl", "dictionary")),
                       ("embedding", ("patch_embed", "to_patch_embedding", "embed")),
                       ("head", ("mlp_head", "head")), ("mlp", ("mlp", "fc"))):
        if any(k in text for k in keys):
            return kind
    return "other"


def feature_ansatz(model: nn.Module, x: Tensor, alphas=ALPHAS, init: nn.Module | None = None,
                   remove_init: bool = False, batch_size: int = 250, progress: bool = False) -> list[dict]:
    """Per linear map of ``model`` on inputs ``x``: ``{"name", "kind", "shape", "corr" {α: r}, "corr_half",
    "cosine_half", "frame_distance", "frame_distance_normalised", "eig_ratio", "corr_G_WWt"}``.

    ``init`` (same architecture) with ``remove_init=True`` gives the W − W₀ variant of the feature matrix.
    """
    if remove_init and init is None:
        raise ConfigError("remove_init needs the initial model")
    w0s = dict(init.named_parameters()) if remove_init else {}
    rows = []
    for name, m in gradient_moments(model, x, batch_size, progress).items():
        base = name.split("#")[0]
        w0 = None
        if remove_init:
            w0 = w0s[base.removesuffix(".T")].detach()
            w0 = w0.t() if base.endswith(".T") else w0
        rows.append({"name": name, "kind": _kind(name, model), **ansatz_statistics(m["weight"], m["G"], alphas, w0)})
    return rows


_PARTS = {"0.fn.qkv": "attn U", "0.fn.to_out.0": "attn out", "1.fn": "ISTA D", "1.fn.T": "ISTA Dᵀ",
          "1.fn.D": "ODL D", "1.fn.D1": "ODL D̂", "attn.qkv": "attn qkv", "attn.proj": "attn out",
          "attn.to_out.0": "attn out", "mlp.fc1": "MLP in", "mlp.fc2": "MLP out"}


def short_name(name: str) -> str:
    """A readable label of a linear map for plots and tables: ``transformer.layers.0.0.fn.qkv.weight`` →
    ``L1 attn U``, ``transformer.layers.0.1.fn.weight.T`` → ``L1 ISTA Dᵀ``, ``blocks.2.mlp.fc1.weight`` →
    ``L3 MLP in``, ``layers.0.weight`` (an MLP) → ``W1``, the patch embedding and the classifier by their role."""
    import re

    base, _, use = name.partition("#")
    transposed = base.endswith(".T")
    base = base.removesuffix(".T").removesuffix(".weight")
    if base == "to_patch_embedding.2":
        label = "patch embed"
    elif base in ("mlp_head.1", "head"):
        label = "classifier"
    elif m := re.fullmatch(r"(?:transformer\.layers|blocks)\.(\d+)\.(.+)", base):
        part = m.group(2) + (".T" if transposed else "")
        label = f"L{int(m.group(1)) + 1} {_PARTS.get(part, part.replace('.fn', '').replace('.', ' '))}"
        transposed = False
    elif m := re.fullmatch(r"layers\.(\d+)", base):
        label = f"W{int(m.group(1)) + 1}"
    else:
        label = base
    return label + ("ᵀ" if transposed else "") + (f" ({use})" if use else "")


def plot_ansatz(results: dict[str, list[dict]], path, title: str = "") -> None:
    """PNG with three panels: Pearson(WᵀW, AGOP^½) per map, the normalised tight-frame distance per map, and the
    correlation averaged over maps against α; one series per entry of ``results`` (e.g. init, trained)."""
    from .plotting import pyplot, save_png

    plt = pyplot()
    first = next(iter(results.values()))
    labels = [short_name(r["name"]) for r in first]
    fig, axes = plt.subplots(1, 3, figsize=(max(11.0, 0.35 * len(labels) * 2 + 4), 4.2),
                             gridspec_kw={"width_ratios": [2, 2, 1]})
    width = 0.8 / max(1, len(results))
    for j, (label, rows) in enumerate(results.items()):
        xs = [i + (j - (len(results) - 1) / 2) * width for i in range(len(rows))]
        axes[0].bar(xs, [r["corr_half"] if r["corr_half"] is not None else 0 for r in rows], width, label=label)
        axes[1].bar(xs, [r["frame_distance_normalised"] or 0 for r in rows], width, label=label)
        alphas = list(rows[0]["corr"])
        means = [sum(r["corr"][a] or 0 for r in rows) / len(rows) for a in alphas]
        axes[2].plot([float(a) for a in alphas], means, marker="o", label=label)
    for ax, ylabel in ((axes[0], r"Pearson($W^\top W$, AGOP$^{1/2}$)"),
                       (axes[1], r"$\|G/\mathrm{tr}\,G - I/k\|_F\,/\sqrt{1-1/k}$")):
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=60, ha="right", rotation_mode="anchor", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
        ax.set_xlim(-0.6, len(labels) - 0.4)
    axes[1].set_title("tight frame: 0 = perfect", fontsize=9)
    axes[0].set_title("feature ansatz per linear map", fontsize=9)
    axes[2].set(xlabel=r"$\alpha$", ylabel=r"mean Pearson($W^\top W$, AGOP$^\alpha$)")
    axes[2].grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()  # one legend for the figure, above the panels: no bar hidden
    fig.legend(handles, names, loc="upper center", ncol=max(1, len(names)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.93 if title else 1.0))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.88 if title else 0.93))
    save_png(fig, path, dpi=110, tight=False)


#: The most powers α one report sweeps.
MAX_ALPHAS = 64


def ansatz_report(src, data, out, samples: int = 1000, alphas=ALPHAS, remove_init: bool = False, seed: int = 0,
                  progress: bool = False) -> dict:
    """Write ``ansatz.json`` and ``ansatz.png`` into the folder ``out`` (published whole): the ansatz of ``src``'s
    model (and of its initialisation when it is a trained run) on the first ``samples`` training images of
    ``data``. Returns the report."""
    from ..checks import check_int, check_memory, check_number, check_seed
    from ..io import atomic_write_json
    from ..runfolder import publish_folder
    from .runs import initial_copy

    check_seed(seed)
    if src.task != "image":
        raise ConfigError(f"the feature ansatz needs an image classifier (logits per class); {src.name} is a "
                          f"{src.task} model")
    check_int(samples, "--samples", low=1)
    alphas = tuple(check_number(a, "alpha", low=0.0, low_open=True, high=16.0) for a in alphas)
    if not alphas or len(alphas) > MAX_ALPHAS:  # each power is a matrix power of every map's AGOP
        raise ConfigError(f"--alphas needs 1 to {MAX_ALPHAS} powers, got {len(alphas)}")
    if 0.5 not in alphas:
        alphas = tuple(sorted(alphas + (0.5,)))
    n = min(samples, len(data.train_set))
    item = data.train_set.__getitems__([0])[0]  # one image: the size of the n held at once
    check_memory(2 * n * item[0].numel() * item.element_size(),
                 f"{n} training images of {tuple(item.shape[1:])} for the AGOP (--samples)")
    x = data.train_set.__getitems__(list(range(n)))[0]
    init, how = initial_copy(src, seed)
    models = {"init": init, "trained": src.model} if src.label == "trained" else {"init": src.model}
    results = {k: feature_ansatz(m, x, alphas, init=init, remove_init=remove_init and k != "init", progress=progress)
               for k, m in models.items()}
    variant = (f"Pearson(F, AGOP^alpha) with F = {'(W-W0)^T (W-W0)' if remove_init else 'W^T W'}; "
               "AGOP = W^T G W, G = mean over samples of the sum over outputs c (logits) and tokens of the "
               "uncentred pre-activation gradients g g^T")
    report = {"model": src.name, "data": data.spec, "samples": len(x), "alphas": list(alphas), "variant": variant,
              "init": how, "results": results}
    with publish_folder(out) as tmp:
        atomic_write_json(tmp / "ansatz.json", report)
        plot_ansatz(results, tmp / "ansatz.png", f"{src.name} on {data.spec}, {len(x)} training images")
    return report
