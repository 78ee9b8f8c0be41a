"""One self-contained HTML page for any run: image classification, MCR², language model or ReduNet.

The page has no external resource: images are embedded as ``data:image/png;base64`` URIs and the style is inline, so
it reads offline and can be mailed as one file. What the run folder already holds (``analysis/``, ``attention/``,
``ansatz/``, each written whole by the instruments) is reused when it is complete; what is missing or incomplete (a
crash between two of its files) is computed again and published whole. Sections by kind of run:

* every trained model: the facts, the training curves (loss on a linear axis when it can be negative, every
  held-out figure the objective logged);
* transformers (image or text): the layer-by-layer compression and sparsity against a random copy, the attention
  maps (over patches, or the patterns of a text window), the circuits (per-head W_QK symmetry, composition, pattern
  scores of a language model, logit lens, head ablation; :mod:`srr.circuits`);
* image classifiers: the feature ansatz (not for MCR² or self-supervised runs, whose classifier head is untrained);
* runs on scenes with object masks (``--data scenes``): the segmentation masks and token norms of ``srr segment``;
* language models: a sample of generated text;
* ReduNet: ΔR, R and R^c per layer, the accuracies, the cosine-similarity matrices.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

__all__ = ["read_metrics", "render_html", "embed_png", "build_report", "REPORT_MARKER"]

REPORT_MARKER = b"<!-- srr report -->"

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .5em;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.note{color:#666;font-size:.85em}"""


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file; a torn last line (a crash mid-write) is skipped."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError):
                continue
    return [r for r in rows if isinstance(r, dict) and ("epoch" in r or "step" in r)]


def embed_png(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("n/a" if v is None else str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _layers_section(rep: dict, png: Path) -> str:
    labels = list(rep["models"])
    header = ["layer"] + [f"{w} {lab}" for lab in labels for w in ("R^c", "non-zero fraction")]
    rows = []
    for i, first in enumerate(rep["models"][labels[0]]):
        row = [first["layer"]]
        for lab in labels:
            r = rep["models"][lab][i]
            row += [r["compression_mean"], r["sparsity_mean"]]
        rows.append(row)
    bases = "; ".join(f"{k}: {v}" for k, v in rep.get("basis", {}).items())
    note = (f"R^c(Z^ℓ | U^ℓ) of the attention input, tokens L2-normalised per head, ε = {rep['eps']}; subspaces: "
            f"{bases}; the middle panel (when present) uses PCA subspaces of the tokens for every model. Non-zero "
            f"fraction of the block output. Mean over {rep.get('images', rep.get('samples'))} held-out inputs.")
    return embed_png(png, "layer statistics") + _table(header, rows) + f'<p class="note">{html.escape(note)}</p>'


def _attention_section(rep: dict, grid: Path, overlay: Path | None) -> str:
    if "tokens" in rep:  # a language model's patterns
        rows = [[r["layer"], r["head"], r["previous_token"], r["first_token"], r["entropy"]] for r in rep["heads"]]
        note = f"{rep['convention']} ({rep['tokens']} tokens). Entropy 1 = uniform over the visible prefix."
        return (embed_png(grid, "attention patterns") +
                _table(["layer", "head", "to previous token", "to first token", "entropy"], rows) +
                f'<p class="note">{html.escape(note)}</p>')
    rows = [[r["layer"], r["head"], r["patch_mass"], r["entropy"], str(tuple(r["peak"]))] for r in rep["heads"]]
    note = (f"{rep['convention']}; test image {rep['index']} (label {rep['label']}). Entropy 1 = uniform over the "
            "patches." + (f" Note: {rep['note']}." if rep.get("note") else ""))
    return (embed_png(overlay, "attention overlays") + embed_png(grid, "attention maps") +
            _table(["layer", "head", "mass on patches", "entropy", "peak patch"], rows) +
            f'<p class="note">{html.escape(note)}</p>')


def _circuits_section(rep: dict, folder: Path) -> str:
    scores = {(r["layer"], r["head"]): r for r in rep.get("pattern_scores", [])}
    ablation = {(r["layer"], r["head"]): r for r in rep.get("head_ablation", {}).get("heads", [])}
    rows = []
    for h in rep["heads"]:
        key = (h["layer"], h["head"])
        s, a = scores.get(key, {}), ablation.get(key, {})
        rows.append([h["layer"], h["head"], h["kind"], h["qk_symmetry"], s.get("previous_token"), s.get("induction"),
                     a.get("delta")])
    base = rep["composition_random_baseline"]
    note = (f"W_QK symmetry ‖W_QK − W_QKᵀ‖/‖W_QK‖ (0: symmetric); pattern scores on {rep['probe']['sequences']} "
            f"random sequences of {rep['probe']['length']} tokens repeated twice (chance: previous "
            f"{rep['pattern_chance']['previous_token']:.3f}, induction {rep['pattern_chance']['induction']:.3f}); "
            if "pattern_scores" in rep else "W_QK symmetry ‖W_QK − W_QKᵀ‖/‖W_QK‖ (0: symmetric); ")
    note += (f"loss change when the head is zero-ablated, on {rep['lens_data']}; random composition baseline Q "
             f"{base['q']:.3f}, K {base['k']:.3f}, V {base['v']:.3f}.")
    if "in_context_learning" in rep:
        icl = rep["in_context_learning"]
        note += (f" In-context learning: loss {icl['loss_first_copy']:.3f} on the first copy, "
                 f"{icl['loss_second_copy']:.3f} nats on the second.")
    figures = [embed_png(folder / name, alt) for name, alt in
               (("composition.png", "composition"), ("scores.png", "pattern scores"),
                ("logit_lens.png", "logit lens"), ("qk.png", "W_QK per head")) if (folder / name).is_file()]
    return ("".join(figures) + _table(["layer", "head", "kind", "W_QK symmetry", "previous-token", "induction",
                                       "ablation Δloss"], rows) + f'<p class="note">{html.escape(note)}</p>')


def _ansatz_section(rep: dict, png: Path) -> str:
    cols = list(rep["results"])
    header = ["map", "kind"] + [f"{w} ({c})" for c in cols for w in ("corr AGOP^½", "frame dist.", "λmin/λmax")]
    rows = []
    for i, first in enumerate(rep["results"][cols[0]]):
        row = [first["name"], first["kind"]]
        for c in cols:
            r = rep["results"][c][i]
            row += [r["corr_half"], r["frame_distance_normalised"], r["eig_ratio"]]
        rows.append(row)
    note = f"{rep['variant']}. {rep['samples']} training images; init: {rep['init']}."
    return embed_png(png, "feature ansatz") + _table(header, rows) + f'<p class="note">{html.escape(note)}</p>'


def _segment_section(rep: dict, folder: Path) -> str:
    heads = ", ".join(f"{j:.3f}" for j in rep["jaccard_per_head"])
    note = (f"{rep['images']} test scenes; masks keep {rep['mass_fraction']:.0%} of each head's read-out attention "
            f"(last layer); Jaccard per head {heads}; best head {rep['best_head']} {rep['jaccard_best_head']:.3f}, "
            f"mean over heads {rep['jaccard_mean_over_heads']:.3f}, first principal component "
            f"{rep['jaccard_pca']:.3f}; outlier tokens (norm > {rep['outlier_ratio']:g} x median) in the last layer: "
            f"{rep['outlier_fraction_last_layer']:.2%}")
    return (embed_png(folder / "segmentation.png", "segmentation masks") +
            embed_png(folder / "token_norms.png", "token norms") + f'<p class="note">{html.escape(note)}</p>')


def render_html(title: str, facts: list[tuple[str, str]], sections: list[tuple[str, str]]) -> str:
    """The page: a title, a table of facts and one ``<h2>`` section per ``(heading, html)``."""
    fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    return (f'<!DOCTYPE html>\n{REPORT_MARKER.decode()}\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"<table>{fact_rows}</table>\n{body}</body></html>\n")


def _redunet_section(folder: Path) -> tuple[str, str]:
    """ΔR per layer and the accuracies of a ReduNet run folder (``srr redunet``)."""
    layers = json.loads((folder / "layers.json").read_text(encoding="utf-8"))
    rows = [[r["layer"], r["R"], r["Rc"], r["delta_R"], r.get("between"), r.get("membership_accuracy")]
            for r in layers["layers"]]
    body = embed_png(folder / "rates.png", "rates") + _table(
        ["layer", "R", "R^c", "ΔR", "between-class |cos|", "membership accuracy"], rows)
    if (folder / "similarity.png").is_file():
        body += embed_png(folder / "similarity.png", "cosine similarity")
    return "ReduNet: rates per layer", body


def _text_sample(model, data, tokens: int = 200) -> str:
    import torch

    from ..data import ByteTokenizer

    prompt = data.val[: min(64, len(data.val))].unsqueeze(0)
    out = model.generate(prompt.to(next(model.parameters()).device), tokens, temperature=0.0)
    tok = ByteTokenizer()
    shown = tok.decode(out[0, : prompt.shape[1]].cpu()), tok.decode(out[0, prompt.shape[1]:].cpu())
    del torch
    return (f'<pre style="white-space:pre-wrap;background:#f7f7f7;padding:.5em">{html.escape(shown[0])}'
            f'<b>{html.escape(shown[1])}</b></pre><p class="note">greedy continuation (bold) of the first '
            f"{prompt.shape[1]} validation bytes</p>")


def build_report(run_dir, out=None, *, index: int = 0, samples: int = 512, ansatz_samples: int = 500,
                 refresh: bool = False) -> dict:
    """Write the HTML page of the run in ``run_dir`` (to ``out``, default ``run_dir/report.html``); computes and
    writes into the run folder the analyses it lacks. Returns ``{"out", "sections", "skipped"}``."""
    from ..checks import check_int
    from ..errors import DataFileNotFoundError
    from ..io import atomic_write_text
    from ..models import count_parameters
    from ..runfolder import RunLock, check_output_file, clean_leftovers
    from .curves import plot_curves
    from .ansatz import ansatz_report
    from .attention import attention_report
    from .layers import analyze
    from .runs import open_source, source_data
    from ..circuits.pipeline import circuits_report

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataFileNotFoundError(f"run folder not found: {run_dir}")
    check_int(samples, "--samples", low=1)
    check_int(ansatz_samples, "--ansatz-samples", low=1)
    out = Path(out) if out is not None else run_dir / "report.html"
    check_output_file(out, [run_dir / n for n in ("config.json", "model.safetensors", "run.json")], REPORT_MARKER)
    with RunLock(run_dir, exclusive=False):
        clean_leftovers(run_dir, published_only=True)  # what killed reports left behind
        src = open_source(str(run_dir))
        record = src.record
        summary = _read_json(run_dir / "summary.json")
        objective = record.get("objective") or summary.get("objective") or {"lm": "lm", "image": "classification",
                                                                              "features": "redunet"}[src.task]
        facts = [("model", src.name), ("task", src.task), ("objective", objective),
                 ("data", str(record.get("data", "n/a"))), ("parameters", f"{count_parameters(src.model):,}")]
        for key in ("test_accuracy", "test_loss", "test_knn", "val_loss", "val_bpb", "epochs", "steps", "seconds"):
            if isinstance(summary.get(key), (int, float)):
                facts.append((key.replace("_", " "), f"{summary[key]:.4g}" if isinstance(summary[key], float)
                              else str(summary[key])))
        sections, skipped = [], []
        metrics = read_metrics(run_dir / "metrics.jsonl")
        if metrics:
            curves = run_dir / "curves.png"
            if refresh or not curves.is_file():
                plot_curves(metrics, curves, title=f"{src.name} ({objective})")
            sections.append(("Training curves", embed_png(curves, "training curves")))
        else:
            skipped.append("training curves (no metrics.jsonl)")

        def cached(sub: str, files: tuple[str, ...], compute, valid=lambda rep: True):
            """The analysis in ``run_dir/sub`` when it is whole (its JSON readable and ``valid``, every file there);
            otherwise computed again and published whole."""
            folder = run_dir / sub
            rep = None
            if not refresh and all((folder / f).is_file() for f in files):
                rep = _read_json(folder / files[0]) or None
            if rep is None or not valid(rep):
                rep = compute(folder)
            return rep, folder

        if src.task == "features":
            if (run_dir / "layers.json").is_file() and (run_dir / "rates.png").is_file():
                sections.append(_redunet_section(run_dir))
            else:
                skipped.append("ReduNet layers (no layers.json / rates.png)")
            data = None
        else:
            data = source_data(src)
        if data is not None and hasattr(src.model, "trace"):
            rep, folder = cached("analysis", ("layers.json", "layers.png"),
                                 lambda f: analyze([src], data, f, samples))
            sections.append(("Layer by layer: compression and sparsity", _layers_section(rep, folder / "layers.png")))
        elif data is not None:
            skipped.append(f"layer statistics ({src.name} has no layers of tokens)")
        if data is not None and hasattr(src.model, "attention_maps") and _forms_attention(src.model):
            files = ("attention.json", "attention_grid.png") + (() if src.task == "lm" else ("attention_overlay.png",))
            rep, folder = cached("attention", files, lambda f: attention_report(src, data, f, index),
                                 lambda rep: rep.get("index") == index)
            overlay = None if src.task == "lm" else folder / "attention_overlay.png"
            title = "Attention patterns" if src.task == "lm" else "Attention maps"
            sections.append((title, _attention_section(rep, folder / "attention_grid.png", overlay)))
        elif data is not None:
            skipped.append(f"attention maps ({src.name}'s attention forms no token-by-token matrix)")
        if data is not None and hasattr(src.model, "block_list") and src.task in ("image", "lm"):
            rep, folder = cached("circuits", ("circuits.json", "qk.png", "logit_lens.png"),
                                 lambda f: circuits_report(src, data, f, samples=min(samples, 32)),
                                 lambda rep: "heads" in rep and "composition_random_baseline" in rep)
            sections.append(("Circuits", _circuits_section(rep, folder)))
        if data is not None and getattr(data, "scenes", None) is not None and _forms_attention(src.model) \
                and hasattr(src.model, "patch_hw"):
            from .segmentation import segmentation_report

            rep, folder = cached("segment", ("segmentation.json", "segmentation.png", "token_norms.png"),
                                 lambda f: segmentation_report(src, data, f))
            sections.append(("Segmentation and outlier tokens", _segment_section(rep, folder)))
        untrained_head = objective in ("mcr2", "simdino", "dino", "mcr2_views")
        if data is not None and src.task == "image" and not untrained_head:
            rep, folder = cached("ansatz", ("ansatz.json", "ansatz.png"),
                                 lambda f: ansatz_report(src, data, f, ansatz_samples))
            sections.append(("Feature ansatz and tight frames", _ansatz_section(rep, folder / "ansatz.png")))
        elif untrained_head:
            shown = {"mcr2": "an MCR²", "simdino": "a SimDINO", "dino": "a DINO", "mcr2_views": "an unsupervised MCR²"}
            skipped.append(f"feature ansatz ({shown[objective]} run's classifier head is untrained)")
        if data is not None and src.task == "lm":
            sections.append(("Generated text", _text_sample(src.model, data)))
        if skipped:
            facts.append(("not shown", "; ".join(skipped)))
        atomic_write_text(out, render_html(f"srr report: {src.name} ({objective}) on {record.get('data', 'n/a')}",
                                           facts, sections))
    return {"out": str(out), "sections": [s[0] for s in sections], "skipped": skipped}


def _forms_attention(model) -> bool:
    blocks = getattr(model, "block_list", None)
    return blocks is not None and all(hasattr(b.attention, "attention") for b in blocks)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}
