"""``srr circuits``: the circuits report of a model (per-head W_QK and W_OV, composition, pattern scores, logit lens,
head ablation); the work is :func:`srr.circuits.pipeline.circuits_report`."""
from __future__ import annotations

NAME = "circuits"
HELP = "circuits of a model: per-head QK/OV matrices, composition, induction scores, logit lens, head ablation"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "circuits")
    p.add_argument("--samples", type=int, default=32,
                   help="held-out inputs for the lens and the ablation table, and probe sequences (default 32)")
    p.add_argument("--length", type=int,
                   help="length T of the random sequence repeated twice in the probe (default min(32, context/2))")
    p.add_argument("--top", type=int, default=10, help="token pairs kept per circuit on tokens (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe and of a model built from a name")
    add_set_argument(p)


def run(args) -> int:
    from contextlib import ExitStack

    from ..circuits.pipeline import circuits_report
    from .options import open_for_analysis

    with ExitStack() as stack:
        (src,), data, out = open_for_analysis(args, "circuits", stack)
        report = circuits_report(src, data, out, samples=args.samples, length=args.length, top=args.top,
                                 seed=args.seed)
    print(f"{'layer':>5}  {'head':>4}  {'kind':>4}  {'QK symmetry':>11}  {'previous':>8}  {'induction':>9}  "
          f"{'ablation dloss':>14}")
    scores = {(r["layer"], r["head"]): r for r in report.get("pattern_scores", [])}
    ablation = {(r["layer"], r["head"]): r for r in report.get("head_ablation", {}).get("heads", [])}

    def fmt(value, width, digits=3):
        return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

    for h in report["heads"]:
        key = (h["layer"], h["head"])
        s, a = scores.get(key, {}), ablation.get(key, {})
        print(f"{h['layer']:>5}  {h['head']:>4}  {h['kind']:>4}  {fmt(h['qk_symmetry'], 11)}  "
              f"{fmt(s.get('previous_token'), 8)}  {fmt(s.get('induction'), 9)}  {fmt(a.get('delta'), 14, 4)}")
    if "in_context_learning" in report:
        icl = report["in_context_learning"]
        print(f"in-context learning: loss {icl['loss_first_copy']:.3f} -> {icl['loss_second_copy']:.3f} nats "
              f"(score {icl['icl_score']:+.3f})")
    lens = report["logit_lens"]
    print("logit lens accuracy per layer: " + " ".join(f"{r['accuracy']:.3f}" for r in lens))
    print(f"wrote {', '.join(str(p) for p in sorted(out.iterdir()) if not p.name.startswith('.'))}")
    return 0
