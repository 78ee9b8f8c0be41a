"""Sparse coding measured: ISTA and FISTA against LISTA trained by srr's engine, and CRATE's ISTA block as one
step of non-negative ISTA (docs/principles.md; the solvers are in :mod:`srr.principles.lasso`).

Protocol of :func:`sparse_coding_report`, on the data of ``--data sparse:n=…,d=…,atoms=…,k=…,noise=…,seed=…``
(:mod:`srr.data.sparse`):

1. ISTA and FISTA (step 1/L, threshold λ) from z = 0 on the test signals, for ``iterations`` iterations: after every
   iteration the normalised error of the codes against the generating codes, NMSE = 10·log₁₀(Σ‖ẑ − z‖²/Σ‖z‖²) dB,
   and the LASSO objective's relative gap (F(z_t) − F*)/F*, F* the least mean objective seen (after 2 ×
   ``iterations`` FISTA iterations, or on the way);
2. for every depth T of ``depths``: a LISTA of T layers (:class:`srr.models.lista.LISTA`) started as T ISTA
   iterations on the data's dictionary, trained by :func:`srr.training.train` with the ``sparse_coding`` objective
   (the squared error to the generating codes) for ``epochs`` epochs of AdamW; its test NMSE before training (equal
   to ISTA's after T iterations) and after;
3. the iterations saved: the first iteration at which ISTA (and FISTA) reach each trained LISTA's NMSE, or none
   within ``iterations``;
4. CRATE's ISTA block (:class:`srr.operators.ISTA`, d × d dictionary, η = λ = 0.1, its kaiming-uniform
   initialisation) on ``crate_tokens`` standardised Gaussian tokens: its largest difference from one step of
   non-negative ISTA started at the tokens, and the non-negative LASSO objective F₊ and the fraction of zero
   entries over 50 further steps (at the block's η and at 1/L).
"""
from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass

import torch

from ..checks import check_finite_tree, check_int, check_memory
from ..errors import ConfigError
from ..settings import Settings, option
from .lasso import fista, ista, lasso_objective, lipschitz, nonnegative_ista

__all__ = ["SparseCodingSettings", "coding_curves", "train_lista", "iterations_to_reach", "crate_block_study",
           "sparse_coding_report"]


@dataclass
class SparseCodingSettings(Settings):
    """The settings of :func:`sparse_coding_report` (every field is a flag of ``srr sparse-coding``)."""

    n: int = option(10000, "pairs (signal, code) drawn; 20 % held out", low=10, high=1 << 24)
    d: int = option(32, "signal dimension d", low=1, high=4096)
    atoms: int = option(64, "atoms m of the dictionary", low=1, high=4096)
    k: int = option(4, "non-zero entries of every code", low=1, high=4096)
    noise: float = option(0.01, "noise level σ of the signals (E‖noise‖² = σ²)", low=0.0, high=1e3)
    lambd: float = option(0.05, "λ of the LASSO (ISTA, FISTA, and LISTA's start)", low=0.0, high=1e3)
    iterations: int = option(1000, "ISTA and FISTA iterations", low=1, high=1_000_000)
    depths: str = option("1,2,4,8,16", "LISTA depths T to train, comma-separated", example="2,4")
    epochs: int = option(20, "training epochs of every LISTA", low=1, high=100_000)
    batch_size: int = option(256, "training batch of LISTA", low=1, high=1 << 20)
    lr: float = option(1e-3, "peak learning rate of LISTA (AdamW, cosine)", low=0.0, low_open=True, high=10.0)
    tied: bool = option(True, "LISTA shares W_e and S across its layers")
    crate_dim: int = option(32, "token width of the CRATE ISTA block", low=1, high=4096)
    crate_tokens: int = option(256, "tokens given to the CRATE ISTA block", low=1, high=1 << 20)
    seed: int = option(0, "seed of the dictionary, the codes, LISTA's training and the CRATE block", low=0,
                       high=2**63 - 1)

    def check(self) -> None:
        if self.k > self.atoms:
            raise ConfigError(f"k = {self.k} non-zeros do not fit {self.atoms} atoms")
        self.depth_list()

    def depth_list(self) -> list[int]:
        parts = [p.strip() for p in self.depths.split(",") if p.strip()]
        if not parts or len(parts) > 64:
            raise ConfigError(f"depths must list 1 to 64 depths, got {self.depths!r}")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"depths must be integers, got {self.depths!r}") from None
        return sorted({check_int(v, "depth", low=1, high=4096) for v in values})


def _nmse_db(z, target) -> float:
    err, energy = float((z - target).square().sum()), float(target.square().sum())
    if not energy > 0:
        raise ConfigError("the codes are all zero: their normalised error is undefined")
    return 10 * math.log10(err / energy) if err > 0 else -math.inf


def coding_curves(x, z_true, D, lambd: float, iterations: int) -> dict:
    """ISTA and FISTA from 0: per iteration the NMSE (dB) against ``z_true`` and the relative objective gap."""
    x, z_true, D = x.double(), z_true.double(), D.double()
    reference = fista(x, D, lambd, 2 * iterations)
    f_star = float(lasso_objective(x, D, reference, lambd).mean())
    curves = {}
    for name, solver in (("ista", ista), ("fista", fista)):
        nmse, objective = [], []

        def record(t, z):
            nmse.append(_nmse_db(z, z_true))
            objective.append(float(lasso_objective(x, D, z, lambd).mean()))

        solver(x, D, lambd, iterations, callback=record)
        curves[name] = {"nmse_db": nmse, "objective": objective}
    f_star = min([f_star] + [min(c["objective"]) for c in curves.values()])  # F* is the least value seen
    for c in curves.values():
        c["objective_gap"] = [(f - f_star) / f_star if f_star > 0 else None for f in c["objective"]]
    return {"f_star": f_star, "L": lipschitz(D), **curves}


def iterations_to_reach(curve: list[float], target: float) -> int | None:
    """The first iteration (1-based) whose value is at most ``target``, or None."""
    return next((t + 1 for t, v in enumerate(curve) if v <= target), None)


def train_lista(data, depth: int, s: SparseCodingSettings) -> dict:
    """A LISTA of ``depth`` layers started as ISTA on the data's dictionary, trained by the engine (in memory)."""
    from ..models import create_model
    from ..objectives import SparseCoding, SparseCodingConfig
    from ..training import TrainConfig, train

    torch.manual_seed(s.seed)
    model = create_model("lista_nano", dim=data.d, atoms=data.atoms, depth=depth, lambd=s.lambd, tied=s.tied,
                         dictionary_seed=data.seed)
    x, z = data.test_set.x, data.test_set.z
    with torch.no_grad():
        before = _nmse_db(model(x), z)
    objective = SparseCoding(SparseCodingConfig(epochs=s.epochs), data)
    config = TrainConfig(batch_size=s.batch_size, lr=s.lr, weight_decay=0.0, seed=s.seed, tensorboard=False,
                         device="cpu")
    with contextlib.redirect_stdout(io.StringIO()):  # the engine's line per epoch; the summary says it all
        summary = train(model, objective, config, None, progress=False)
    model.eval()
    with torch.no_grad():
        after = _nmse_db(model(x), z)
    return {"depth": depth, "parameters": summary["parameters"], "nmse_db_init": before, "nmse_db": after,
            "seconds": summary["seconds"], "steps": summary["steps"]}


def _check_crate_memory(dim: int, tokens: int) -> None:
    check_memory(8 * (8 * tokens * dim + 3 * dim * dim), f"the CRATE block study on {tokens} tokens of width {dim}")


@torch.no_grad()
def crate_block_study(dim: int, tokens: int, seed: int, steps: int = 50) -> dict:
    """CRATE's ISTA block against non-negative ISTA (item 4 of the module docstring)."""
    from ..operators import ISTA
    from .lasso import crate_block_as_step

    _check_crate_memory(dim, tokens)
    torch.manual_seed(seed)
    block = ISTA(dim)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, dim, generator=g)
    x = (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True)  # as after a LayerNorm
    same = crate_block_as_step(block, x)
    D, xd = block.weight.double(), x.double()
    runs = {}
    for label, eta in (("block_step", block.step_size), ("one_over_L", 1.0 / lipschitz(D))):
        objective, zeros = [float(lasso_objective(xd, D, xd, block.lambd).mean())], [float((xd == 0).double().mean())]

        def record(t, z):
            objective.append(float(lasso_objective(xd, D, z, block.lambd).mean()))
            zeros.append(float((z == 0).double().mean()))

        nonnegative_ista(xd, D, block.lambd, steps, step=eta, z0=xd, callback=record)
        runs[label] = {"step": eta, "objective": objective, "zero_fraction": zeros}
    return {"dim": dim, "tokens": tokens, "max_abs_difference": same["max_abs_difference"], "eta": block.step_size,
            "lambd": block.lambd, "eta_times_L": same["eta_times_L"], "runs": runs}


def _plot_curves(curves: dict, lista: list[dict], path, title: str) -> None:
    from ..analysis.plotting import pyplot, save_png

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    its = range(1, len(curves["ista"]["nmse_db"]) + 1)
    for name in ("ista", "fista"):
        a1.plot(its, curves[name]["nmse_db"], label=name.upper())
        a2.plot(its, curves[name]["objective_gap"], label=name.upper())
    a1.plot([r["depth"] for r in lista], [r["nmse_db"] for r in lista], "o-", color="tab:red", label="LISTA (trained)")
    a1.plot([r["depth"] for r in lista], [r["nmse_db_init"] for r in lista], "x", color="tab:red",
            label="LISTA at initialisation (= ISTA)")
    a1.set(xscale="log", xlabel="iterations (ISTA, FISTA) or layers (LISTA)",
           ylabel=r"NMSE of the codes (dB)  $10\log_{10}\|\hat z - z\|^2/\|z\|^2$",
           title="error against the true codes")
    a2.set(xscale="log", yscale="log", xlabel="iterations", ylabel=r"$(F(z_t) - F^*)/F^*$",
           title="LASSO objective gap")
    for a in (a1, a2):
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path)


def _plot_crate(study: dict, path) -> None:
    from ..analysis.plotting import pyplot, save_png

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, run in study["runs"].items():
        steps = range(len(run["objective"]))
        text = f"η = {run['step']:.3g}" + (" (the block's)" if label == "block_step" else " (1/L)")
        a1.plot(steps, run["objective"], marker=".", label=text)
        a2.plot(steps, run["zero_fraction"], marker=".", label=text)
    block = study["runs"]["block_step"]
    a1.plot([1], [block["objective"][1]], "r*", ms=14, label="CRATE's ISTA block = step 1")
    a2.plot([1], [block["zero_fraction"][1]], "r*", ms=14, label="CRATE's ISTA block = step 1")
    a1.set(yscale="log", xlabel="non-negative ISTA steps from z = x",
           ylabel=r"$F_+(z) = \frac{1}{2}\|x - Dz\|^2 + \lambda\|z\|_1$", title="non-negative LASSO objective")
    a2.set(xlabel="non-negative ISTA steps from z = x", ylabel="fraction of zero entries", title="sparsity")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(f"CRATE's ISTA block (d = {study['dim']}, η = {study['eta']}, λ = {study['lambd']}, ηL = "
                 f"{study['eta_times_L']:.2f}); |block − one step| ≤ {study['max_abs_difference']:.1e}", fontsize=10)
    save_png(fig, path)


def sparse_coding_report(out, settings: SparseCodingSettings | None = None) -> dict:
    """Write ``sparse_coding.json``, ``sparse_coding.png`` and ``crate_ista.png`` into the folder ``out``
    (published whole), following the module docstring. Returns the report."""
    from ..data.sparse import sparse_codes
    from ..io import atomic_write_json
    from ..runfolder import check_output_folder, publish_folder

    s = settings or SparseCodingSettings()
    if not isinstance(s, SparseCodingSettings):
        raise ConfigError(f"settings must be a SparseCodingSettings, got {type(s).__name__}")
    depths = s.depth_list()
    check_memory(8 * 8 * s.n * s.atoms + 4 * max(depths) * s.atoms * (s.d + s.atoms) * (1 if s.tied else max(depths)),
                 f"LISTA and the codes of {s.n} signals over {s.atoms} atoms")
    _check_crate_memory(s.crate_dim, s.crate_tokens)
    out = check_output_folder(out)
    data = sparse_codes(s.n, s.d, s.atoms, s.k, s.noise, s.seed)
    curves = coding_curves(data.test_set.x, data.test_set.z, data.dictionary, s.lambd, s.iterations)
    lista = [train_lista(data, depth, s) for depth in depths]
    for row in lista:
        ista_at_t = curves["ista"]["nmse_db"][row["depth"] - 1] if row["depth"] <= s.iterations else None
        row["ista_nmse_db_same_depth"] = ista_at_t
        row["ista_iterations_to_reach"] = iterations_to_reach(curves["ista"]["nmse_db"], row["nmse_db"])
        row["fista_iterations_to_reach"] = iterations_to_reach(curves["fista"]["nmse_db"], row["nmse_db"])
    crate = crate_block_study(s.crate_dim, s.crate_tokens, s.seed)
    report = {"settings": s.to_dict(), "data": data.spec, "L": curves["L"], "f_star": curves["f_star"],
              "ista": curves["ista"], "fista": curves["fista"], "lista": lista, "crate_block": crate,
              "best": {name: min(curves[name]["nmse_db"]) for name in ("ista", "fista")}}
    check_finite_tree(report, "the report")
    title = (f"{s.k}-sparse codes over {s.atoms} atoms in d = {s.d}, σ = {s.noise:g}, λ = {s.lambd:g}, "
             f"{len(data.test_set)} test signals")
    with publish_folder(out) as tmp:
        atomic_write_json(tmp / "sparse_coding.json", report)
        _plot_curves(curves, lista, tmp / "sparse_coding.png", title)
        _plot_crate(crate, tmp / "crate_ista.png")
    return report
