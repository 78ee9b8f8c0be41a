"""Train every causal language-model family with the same budget on Tiny Shakespeare and compare them.

Same steps, batch, context, optimiser (AdamW, betas 0.9/0.95, weight decay 0.1, warm-up then cosine to 10 %), seed
and data order for every model; validation over the whole held-out last 10 % of the text, in bits per byte.
Throughput is measured separately, before training, on fresh copies: training steps of each model timed in
alternation (round robin, after a warm-up step), median per model, so that the load of a shared machine hits every
model alike. Writes ``benchmarks/results/lm_family.json``, ``lm_family.md`` (the README table) and ``lm_family.png``
(validation curves), and prints one line of ratios against the GPT baseline.

    python benchmarks/lm_family.py                       # the README run (nano size, 250 steps of 32 x 128)
    python benchmarks/lm_family.py --steps 20 --quick    # smoke test
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import srr  # noqa: E402
from srr.data import load_text  # noqa: E402
from srr.io import atomic_path, atomic_write_json, atomic_write_text  # noqa: E402
from srr.objectives import LanguageConfig, LanguageModelling  # noqa: E402
from srr.training import TrainConfig, parameter_groups, train  # noqa: E402

FAMILIES = ["gpt", "crate_gpt", "aot_gpt", "tost_gpt"]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def random_windows(tokens: torch.Tensor, batch_size: int, context: int, generator: torch.Generator):
    """``batch_size`` inputs (B, context) and their next-token targets, from uniformly random offsets."""
    starts = torch.randint(0, len(tokens) - context, (batch_size,), generator=generator)
    windows = tokens[starts.unsqueeze(1) + torch.arange(context + 1)]
    return windows[:, :-1], windows[:, 1:]


def throughput(names: list[str], data, batch: int, context: int, rounds: int, steps: int) -> dict[str, float]:
    """Median training tokens per second of each model, timed in alternation on fresh copies."""
    models = {n: srr.create_model(n) for n in names}
    opts = {n: torch.optim.AdamW(parameter_groups(m, 0.1), lr=1e-4) for n, m in models.items()}
    g = torch.Generator().manual_seed(123)
    times: dict[str, list[float]] = {n: [] for n in names}

    def step(name):
        x, y = random_windows(data.train, batch, context, g)
        loss = F.cross_entropy(models[name](x).reshape(-1, 256), y.reshape(-1))
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    for name in names:  # warm-up
        step(name)
    for _ in range(rounds):
        for name in names:
            t0 = time.perf_counter()
            for _ in range(steps):
                step(name)
            times[name].append((time.perf_counter() - t0) / steps)
    return {n: batch * context / statistics.median(t) for n, t in times.items()}


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for r in results:
        ax.plot([h["step"] for h in r["history"]], [h["val_bpb"] for h in r["history"]], marker="o",
                label=f"{r['model']} ({r['parameters'] / 1e6:.2f}M)")
    ax.set_xlabel("step")
    ax.set_ylabel("validation bits per byte")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="plain text file (default: the shared Tiny Shakespeare)")
    p.add_argument("--size", default="nano", help="model size suffix (default nano)")
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: robust on a shared CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="validate on 8,192 tokens and time fewer steps")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder of the results")
    p.add_argument("--runs", default=str(ROOT / "runs" / "lm_family"),
                   help="folder of the trained models, one run folder each (default runs/lm_family, git-ignored)")
    args = p.parse_args(argv)
    if not Path(args.data).is_file():
        print(f"lm_family: the text file {args.data} is missing", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    data = load_text(f"text:{args.data}")
    names = [f"{f}_{args.size}" for f in FAMILIES]
    context = srr.create_model(names[0]).context
    start = time.perf_counter()
    speed = throughput(names, data, args.batch_size, context, rounds=1 if args.quick else 3,
                       steps=1 if args.quick else 2)
    config = dict(steps=args.steps, batch_size=args.batch_size, context=context, lr=args.lr, weight_decay=0.1,
                  eval_every=args.eval_every, eval_tokens=8192 if args.quick else 0, seed=args.seed)
    # the engine with the language objective's own defaults (betas 0.9/0.95, clip 1.0, cosine floor 10 %)
    engine = TrainConfig(**{**LanguageModelling.defaults, "batch_size": args.batch_size, "lr": args.lr,
                            "weight_decay": 0.1, "seed": args.seed, "tensorboard": False})
    objective = LanguageConfig(steps=args.steps, eval_every=args.eval_every, context=context,
                               eval_tokens=config["eval_tokens"])
    results = []
    for name in names:
        torch.manual_seed(args.seed)
        model = srr.create_model(name)
        run_dir = Path(args.runs) / name  # the trained models: `srr generate` them
        summary = train(model, LanguageModelling(objective, data), engine, run_dir, progress=True, overwrite=True)
        history = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
        train_seconds = summary["tokens"] / summary["tokens_per_second"]
        results.append({"model": name, "parameters": summary["parameters"], "val_loss": summary["val_loss"],
                        "val_bpb": summary["val_bpb"], "train_loss": summary["train_loss"],
                        "tokens_per_second": speed[name], "tokens_per_second_in_training":
                            summary["tokens_per_second"], "train_seconds": train_seconds,
                        "history": history})
        print(f"{name}: {summary['parameters']:,} parameters, validation {summary['val_bpb']:.4f} bits/byte, "
              f"{speed[name]:,.0f} tokens/s", flush=True)
    wall = time.perf_counter() - start
    command = "python benchmarks/lm_family.py " + " ".join(argv if argv is not None else sys.argv[1:])
    budget = (f"{args.steps} steps x batch {args.batch_size} x context {context} = "
              f"{args.steps * args.batch_size * context:,} training tokens per model; AdamW lr {args.lr}, "
              f"betas (0.9, 0.95), weight decay 0.1, warm-up 5 % then cosine to 10 %, clip 1.0, seed {args.seed}; "
              f"{args.threads} thread(s)")
    report = {"command": command.strip(), "data": args.data, "budget": budget, "config": config,
              "validation_tokens": len(data.val) if not args.quick else 8192, "wall_seconds": wall,
              "torch": torch.__version__, "results": results}
    out = Path(args.out)
    atomic_write_json(out / "lm_family.json", report)
    base = next(r for r in results if r["model"].startswith("gpt_"))
    lines = [f"Tiny Shakespeare, byte level; {budget}. Validation: the last 10 % of the text "
             f"({report['validation_tokens']:,} bytes). Command: `{report['command']}`.", "",
             "| model | parameters | tokens/s (train) | validation bits/byte |", "|---|---|---|---|"]
    lines += [f"| `{r['model']}` | {r['parameters']:,} | {r['tokens_per_second']:,.0f} | {r['val_bpb']:.3f} |"
              for r in results]
    atomic_write_text(out / "lm_family.md", "\n".join(lines) + "\n")
    plot(results, out / "lm_family.png", f"Tiny Shakespeare, {args.steps} steps x {args.batch_size} x {context}")
    ratios = ", ".join(f"{r['model']} bpb x{r['val_bpb'] / base['val_bpb']:.3f} speed "
                       f"x{r['tokens_per_second'] / base['tokens_per_second']:.2f}" for r in results if r is not base)
    print(f"vs {base['model']} ({base['val_bpb']:.3f} bpb): {ratios}; wall {wall / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
