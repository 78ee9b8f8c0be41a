"""The induction study: do two-layer attention-only models with tied symmetric attention form induction heads?

Side by side, same data, optimiser, steps and seeds: two-layer attention-only models with untied attention (MHSA,
GPT-style: W_QK = W_Qᵀ W_K free) and with tied symmetric attention (MSSA as in AoT: W_QK = U Uᵀ), plus one-layer
controls of both (an induction head needs two layers). The task: windows of ``--window`` tokens whose first half is
uniform random tokens and whose second half is made of chunks of ``--chunk`` tokens, each copied from a random place
of the first half. Inside a chunk the next token is predictable, and only by finding the earlier occurrence of the
current token and reading the token after it: an induction mechanism. Two easier tasks were tried first and dropped
because a one-layer model solves them without an induction head: with one fixed distance between the copies it
learns a head attending to that relative position (and scores as an induction head on a probe of that period);
with periodic sequences (a block repeated to fill the window) it predicts "the token seen longest ago".

Every ``--eval-every`` steps, on 128 held-out windows of the task: the copy loss (mean next-token loss where a copy
continues), the in-context-learning score (copy loss minus the loss elsewhere, ≈ ln V), and per head the induction
score (mean attention from a token to the position after its earlier occurrence, Olsson et al.'s score with each
copy's own distance), the previous-token and the duplicate-token scores; the best head's are kept. The phase change
is the first evaluated step at which the copy loss falls below half of ln V. After training, every head is dissected
on the same windows: its attention on the earlier occurrence, on the one or two positions after it, on the previous
token and on itself, and the rise of the copy loss when it is ablated (``heads`` of each run in the JSON).

``--task shakespeare`` trains the same models on random windows of Tiny Shakespeare (bytes) instead and adds the
held-out loss; the scores are then measured on probes of T random tokens repeated twice (``--probe-periods``, the
tokens drawn from the bytes the text uses, V of them in the threshold), averaged over the probes: whether training on
natural text made the models copy. Written to ``induction_shakespeare.json``.

Writes ``benchmarks/results/induction.json`` (curves per model and seed, the table) and ``induction.png``, prints the
table and one line of ratios (final copy loss of each model over the untied two-layer model's).

    python benchmarks/induction.py --threads 1 --jobs 2     # the documented run (3 seeds, 3000 steps)
    python benchmarks/induction.py --steps 100 --seeds 1    # smoke test
    python benchmarks/induction.py --task shakespeare --threads 1
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, add_thread_option, apply_threads, shown, write_result  # noqa: E402

from srr.circuits import (AttentionOnlyGPT, ablate_heads, attention_patterns, icl_score, pattern_scores,  # noqa: E402
                          position_losses, repeated_tokens)
from srr.io import atomic_path  # noqa: E402

MODELS = {  # name: (attention, depth)
    "untied-2L": ("untied", 2),
    "tied-2L": ("tied", 2),
    "untied-1L": ("untied", 1),
    "tied-1L": ("tied", 1),
}


DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"


def build(name: str, args, seed: int) -> AttentionOnlyGPT:
    attention, depth = MODELS[name]
    torch.manual_seed(seed)
    config = AttentionOnlyGPT.Config(vocab_size=args.vocab, context=args.window, dim=args.dim,
                                     depth=depth, heads=args.heads, attention=attention)
    return AttentionOnlyGPT(config)


def training_batch(vocab: int, chunk: int, context: int, batch: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, sources), both (batch, context): the first half of each window uniform random tokens, the second half
    made of chunks of ``chunk`` tokens, each a copy of a chunk of the first half that starts at a uniformly random
    place; ``sources[b, j]`` is the position token j was copied from (−1 for a random token)."""
    half = context // 2
    ids = torch.randint(0, vocab, (batch, context), generator=generator)
    sources = torch.full((batch, context), -1, dtype=torch.long)
    for row, src in zip(ids, sources):
        for start in range(half, context - chunk + 1, chunk):
            s = int(torch.randint(0, half - chunk + 1, (1,), generator=generator))
            row[start:start + chunk] = row[s:s + chunk]
            src[start:start + chunk] = torch.arange(s, s + chunk)
    return ids, sources


@torch.no_grad()
def evaluate_task(model, ids: torch.Tensor, sources: torch.Tensor) -> dict:
    """Scores on held-out task windows. A position i is *predictable* when token i + 1 is a copy whose predecessor is
    the copy of its source's predecessor (not the first token of a chunk); there the next token is the one after the
    earlier occurrence of token i, at position sources[i + 1]. ``copy_loss``: mean next-token loss (nats) at the
    predictable positions; ``icl_score``: that minus the loss at the other positions (≈ ln V); per head the
    induction score (mean attention from i to sources[i + 1], the Olsson et al. score with the distance of each copy),
    the previous-token score (to i − 1) and the duplicate-token score (to sources[i], the earlier occurrence)."""
    model.eval()
    nxt = sources[:, 1:]
    predictable = (nxt >= 0) & (sources[:, :-1] == nxt - 1)  # (B, N − 1): position i predicts a continued copy
    logits = model(ids)[:, :-1].double()
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    losses = losses.view(ids.shape[0], -1)
    copy_loss, other = float(losses[predictable].mean()), float(losses[~predictable].mean())
    b, i = predictable.nonzero(as_tuple=True)
    rows = []
    for layer, a in enumerate(attention_patterns(model, ids)):
        a = a.double()
        induction = a[b, :, i, nxt[b, i]].mean(0)
        duplicate = a[b, :, i, sources[b, i]].mean(0)
        steps = torch.arange(1, ids.shape[1])
        previous = a[:, :, steps, steps - 1].mean(dim=(0, 2))
        for head in range(a.shape[1]):
            rows.append({"layer": layer, "head": head, "induction": float(induction[head]),
                         "previous_token": float(previous[head]), "duplicate_token": float(duplicate[head])})
    model.train()
    best = max(rows, key=lambda r: r["induction"])
    return {"copy_loss": copy_loss, "other_loss": other, "icl_score": copy_loss - other,
            "induction": best["induction"], "induction_head": [best["layer"], best["head"]],
            "previous_token": max(r["previous_token"] for r in rows),
            "duplicate_token": max(r["duplicate_token"] for r in rows), "heads": rows}


@torch.no_grad()
def dissect(model, ids: torch.Tensor, sources: torch.Tensor) -> list[dict]:
    """Per head of the trained model, on held-out task windows at the predictable positions i: the attention mass on
    the earlier occurrence src(i) and on the positions src(i) + 1 (the induction target) and src(i) + 2, on i − 1 and
    on i itself, and the rise of the copy loss when the head is zero-ablated (:func:`srr.circuits.ablate_heads`)."""
    model.eval()
    nxt = sources[:, 1:]
    predictable = (nxt >= 0) & (sources[:, :-1] == nxt - 1)
    b, i = predictable.nonzero(as_tuple=True)
    last = ids.shape[1] - 1

    def copy_loss() -> float:
        logits = model(ids)[:, :-1].double()
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
        return float(losses.view(ids.shape[0], -1)[predictable].mean())

    base = copy_loss()
    rows = []
    for layer, a in enumerate(attention_patterns(model, ids)):
        for head in range(a.shape[1]):
            mass = {f"src{k:+d}": float(a[b, head, i, (sources[b, i] + k).clamp(0, last)].mean()) for k in (0, 1, 2)}
            with ablate_heads(model, [(layer, head)]):
                delta = copy_loss() - base
            rows.append({"layer": layer, "head": head, **mass, "previous": float(a[b, head, i, i - 1].mean()),
                         "self": float(a[b, head, i, i].mean()), "ablation_delta": delta})
    model.train()
    return rows


def evaluate(model, probes: dict[int, torch.Tensor]) -> dict:
    """Scores on each probe (period T: T random tokens repeated twice), averaged over the probes: the second-copy
    loss (``copy_loss``) and ICL score, and per head its mean induction (previous-token, duplicate-token) score, of
    which the best head's is kept."""
    model.eval()
    icl, per_head = [], {}
    with torch.no_grad():
        for length, probe in probes.items():
            icl.append(icl_score(position_losses(model, probe), length))
            for r in pattern_scores(attention_patterns(model, probe), length):
                per_head.setdefault((r["layer"], r["head"]), []).append(r)
    model.train()
    mean = {key: {k: sum(r[k] for r in rows) / len(rows) for k in ("induction", "previous_token", "duplicate_token")}
            for key, rows in per_head.items()}
    best = max(mean, key=lambda key: mean[key]["induction"])
    out = {k: sum(r[k] for r in icl) / len(icl) for k in icl[0]}
    return {"copy_loss": out["loss_second_copy"], "icl_score": out["icl_score"], "induction": mean[best]["induction"],
            "induction_head": list(best), "previous_token": max(m["previous_token"] for m in mean.values()),
            "duplicate_token": max(m["duplicate_token"] for m in mean.values())}


def text_batch(tokens: torch.Tensor, window: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, window) token ids: windows of the text at uniformly random offsets."""
    starts = torch.randint(0, len(tokens) - window, (batch,), generator=generator)
    return tokens[starts.unsqueeze(1) + torch.arange(window)]


@torch.no_grad()
def text_loss(model, tokens: torch.Tensor, window: int, windows: int = 32) -> float:
    """Mean next-token loss (nats) over ``windows`` evenly spaced held-out windows."""
    starts = torch.linspace(0, len(tokens) - window - 1, windows).long()
    ids = tokens[starts.unsqueeze(1) + torch.arange(window)]
    model.eval()
    logits = model(ids)[:, :-1]
    model.train()
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)))


def train_one(name: str, args, seed: int, probes, text=None) -> dict:
    """Train one model; ``probes`` are the held-out task windows (ids, sources), or the repeated probes of a text."""
    model = build(name, args, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    generator = torch.Generator().manual_seed(1000 + seed)
    curve, losses = [], []
    start = time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0:
            row = evaluate(model, probes) if text is not None else evaluate_task(model, *probes)
            if text is not None:
                row["val_loss"] = text_loss(model, text.val, args.window)
            row.update(step=step, train_loss=sum(losses) / len(losses) if losses else None)
            curve.append(row)
            losses = []
        if step == args.steps:
            break
        ids = training_batch(args.vocab, args.chunk, args.window, args.batch, generator)[0] if text is None \
            else text_batch(text.train, args.window, args.batch, generator)
        logits = model(ids)[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    threshold = math.log(args.probe_vocab) / 2
    change = next((r["step"] for r in curve if r["copy_loss"] < threshold), None)
    final = curve[-1]
    heads = dissect(model, *probes) if text is None else None
    return {"heads": heads, "model": name, "seed": seed, "phase_change_step": change, "final_induction": final["induction"],
            "final_copy_loss": final["copy_loss"], "final_icl_score": final["icl_score"],
            "final_previous_token": final["previous_token"], "final_val_loss": final.get("val_loss"),
            "seconds": time.perf_counter() - start, "curve": curve}


def _train_job(job) -> dict:
    return train_one(*job)


def plot(runs: list[dict], path: Path, ln_v: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(MODELS, ("tab:blue", "tab:red", "tab:cyan", "tab:pink")))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    seen = set()
    for run in runs:
        steps = [r["step"] for r in run["curve"]]
        label = None if run["model"] in seen else run["model"]
        seen.add(run["model"])
        axes[0].plot(steps, [r["copy_loss"] for r in run["curve"]], color=colours[run["model"]], label=label)
        axes[1].plot(steps, [r["induction"] for r in run["curve"]], color=colours[run["model"]], label=label)
    axes[0].axhline(ln_v, color="grey", linestyle=":", linewidth=1)
    axes[0].axhline(ln_v / 2, color="grey", linestyle="--", linewidth=1)
    axes[0].set(xlabel="step", ylabel="copy loss (nats)", title="loss where copying helps")
    axes[1].set(xlabel="step", ylabel="best induction score", title="induction score (best head)", ylim=(0, 1))
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds per model (default 3)")
    parser.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    parser.add_argument("--batch", type=int, default=64, help="sequences per step (default 64)")
    parser.add_argument("--vocab", type=int, default=32, help="vocabulary V (default 32)")
    parser.add_argument("--chunk", type=int, default=8, help="length of the copied chunk (default 8)")
    parser.add_argument("--probe-periods", type=int, nargs="+", default=(6, 9, 12),
                        help="periods T of the probes of --task shakespeare, each <= window/2 (default 6 9 12)")
    parser.add_argument("--dim", type=int, default=64, help="width d (default 64)")
    parser.add_argument("--heads", type=int, default=4, help="heads per layer (default 4)")
    parser.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate (default 3e-3)")
    parser.add_argument("--task", choices=("repeat", "shakespeare"), default="repeat",
                        help="train on repeated random sequences (default) or on Tiny Shakespeare (bytes)")
    parser.add_argument("--text", default=str(DEFAULT_TEXT), help="the text file of --task shakespeare")
    parser.add_argument("--window", type=int, default=32, help="training sequence length (default 32)")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between evaluations (default 250)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once in worker processes (default 1)")
    add_thread_option(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.chunk <= args.window // 2 or max(args.probe_periods) > args.window // 2:
        parser.error("need 1 <= --chunk <= window/2 and every probe period <= window/2")
    apply_threads(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    text = None
    if args.task == "shakespeare":
        from srr.data import load_text

        text = load_text(f"text:{args.text}")
        args.vocab = text.vocab_size
        present = torch.unique(text.train)  # the probe draws its random tokens from the bytes the text uses
        probes = {t: present[repeated_tokens(len(present), t, batch=64, seed=12345 + t)] for t in args.probe_periods}
        args.probe_vocab = len(present)
    else:
        probes = training_batch(args.vocab, args.chunk, args.window, 128, torch.Generator().manual_seed(12345))
        args.probe_vocab = args.vocab
    jobs = [(name, seed) for seed in range(args.seeds) for name in args.models]
    if args.jobs > 1:  # the runs are independent: side by side in worker processes, one thread each
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            runs = list(pool.map(_train_job, [(name, args, seed, probes, text) for name, seed in jobs]))
    else:
        runs = [train_one(name, args, seed, probes, text) for name, seed in jobs]
    for run in runs:
        print(f"{run['model']:>10} seed {run['seed']}: phase change at {run['phase_change_step']}, induction "
              f"{run['final_induction']:.3f}, copy loss {run['final_copy_loss']:.3f} "
              f"({run['seconds']:.0f} s)")
    table = [{k: v for k, v in run.items() if k not in ("curve", "heads")} for run in runs]
    settings = {k: getattr(args, k) for k in ("task", "steps", "batch", "vocab", "chunk", "probe_periods", "dim",
                                              "heads", "lr", "eval_every", "seeds", "window", "probe_vocab")}
    name = "induction" if text is None else "induction_shakespeare"
    path = write_result(name, {"settings": settings, "ln_vocab": math.log(args.probe_vocab), "table": table,
                               "runs": runs})
    plot(runs, path.with_suffix(".png"), math.log(args.probe_vocab))
    print(f"{'model':>10}  {'seed':>4}  {'phase change':>12}  {'induction':>9}  {'copy loss':>13}  {'ICL':>7}"
          + ("  val loss" if text is not None else ""))
    for row in table:
        step = "-" if row["phase_change_step"] is None else str(row["phase_change_step"])
        print(f"{row['model']:>10}  {row['seed']:>4}  {step:>12}  {row['final_induction']:>9.3f}  "
              f"{row['final_copy_loss']:>13.3f}  {row['final_icl_score']:>+7.3f}"
              + (f"  {row['final_val_loss']:>8.3f}" if text is not None else ""))
    base = [r["final_copy_loss"] for r in table if r["model"] == "untied-2L"]
    if base:
        ref = sum(base) / len(base)
        ratios = []
        for name in args.models:
            own = [r["final_copy_loss"] for r in table if r["model"] == name]
            ratios.append(f"{name} {sum(own) / len(own) / ref:.2f}")
        print("copy loss / untied-2L: " + ", ".join(ratios))
    print(f"wrote {shown(path)} and {shown(path.with_suffix('.png'))}")


if __name__ == "__main__":
    main()
