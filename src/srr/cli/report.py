"""``srr report``: one self-contained HTML page for a run folder (curves, layers, attention maps, feature ansatz)."""
from __future__ import annotations

NAME = "report"
HELP = "one self-contained HTML page for a training run (computes the analyses it lacks)"


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by `srr train`")
    p.add_argument("--out", help="output file (default RUN_DIR/report.html)")
    p.add_argument("--index", type=int, default=0, help="test image of the attention maps (default 0)")
    p.add_argument("--samples", type=int, default=512, help="test images of the layer statistics (default 512)")
    p.add_argument("--ansatz-samples", type=int, default=500, help="training images of the AGOP (default 500)")
    p.add_argument("--refresh", action="store_true", help="recompute every analysis even if the folder holds it")


def run(args) -> int:
    import json
    from pathlib import Path

    from ..analysis.report import SECTIONS, embed_png, plot_training, read_metrics, render_html
    from ..data import load_data
    from ..errors import ConfigError, DataFileNotFoundError
    from ..io import atomic_write_text, ensure_writable_dir
    from ..models import count_parameters, from_pretrained, read_config
    from . import analyze, ansatz, attention

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise DataFileNotFoundError(f"run folder not found: {run_dir}")
    if args.samples < 1 or args.ansatz_samples < 1:
        raise ConfigError("--samples and --ansatz-samples must be positive")
    out = Path(args.out) if args.out else run_dir / "report.html"
    ensure_writable_dir(out.parent)  # fail before the work, not after it
    config = read_config(run_dir)
    model = from_pretrained(run_dir)
    name, model_args = config["model"], config.get("args", {})
    data = load_data(config.get("data") or "digits")
    summary_path = run_dir / "summary.json"
    try:  # the summary only adds facts: an unreadable one (e.g. torn by a crash) is left out
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    except (OSError, ValueError):
        summary = {}
    summary = summary if isinstance(summary, dict) else {}
    facts = [("model", name), ("data", data.spec), ("parameters", f"{count_parameters(model):,}")]
    for key in ("test_accuracy", "test_loss", "epochs", "seconds"):
        if summary.get(key) is not None:
            facts.append((key.replace("_", " "), f"{summary[key]:.4g}" if isinstance(summary[key], float)
                          else str(summary[key])))
    sections, skipped = [], []

    metrics = read_metrics(run_dir / "metrics.jsonl")
    if metrics:
        plot_training(metrics, run_dir / "training.png")
        sections.append(("Training curves", embed_png(run_dir / "training.png", "training curves")))
    else:
        skipped.append("training curves (no metrics.jsonl)")

    def cached(sub: str, file: str, compute, valid=lambda rep: True):
        """The analysis in ``RUN_DIR/sub`` if it is there (readable and ``valid``), else computed and written."""
        path = run_dir / sub / file
        try:
            rep = None if args.refresh else json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rep = None
        if rep is None or not valid(rep):
            rep = compute(run_dir / sub)
        return rep, run_dir / sub

    if hasattr(model, "trace") and hasattr(model, "subspaces"):
        rep, folder = cached("analysis", "layers.json", lambda out: analyze.produce(
            model, "trained", name, model_args, data, out, args.samples, source=str(run_dir)))
        sections.append(("Layer by layer: compression and sparsity", SECTIONS["layers"](rep, folder / "layers.png")))
    else:
        skipped.append(f"layer statistics ({name} has no trace/subspaces)")
    if hasattr(model, "attention_maps"):
        rep, folder = cached("attention", "attention.json", lambda out: attention.produce(
            model, f"{name} (trained)", data, args.index, out), lambda rep: rep.get("index") == args.index)
        sections.append(("Attention maps (CLS token)", SECTIONS["attention"](
            rep, folder / "attention_grid.png", folder / "attention_overlay.png")))
    else:
        skipped.append(f"attention maps ({name} has no attention_maps)")
    rep, folder = cached("ansatz", "ansatz.json", lambda out: ansatz.produce(
        model, name, model_args, "trained", str(run_dir), data, out, args.ansatz_samples))
    sections.append(("Feature ansatz and tight frames", SECTIONS["ansatz"](rep, folder / "ansatz.png")))
    if skipped:
        facts.append(("not shown", "; ".join(skipped)))
    atomic_write_text(out, render_html(f"srr report: {name} on {data.spec}", facts, sections))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(sections)} sections"
          + (f"; not shown: {'; '.join(skipped)}" if skipped else "") + ")")
    return 0
