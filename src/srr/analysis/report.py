"""One self-contained HTML page for a training run: curves, layer statistics, attention maps, feature ansatz.

The page has no external resource: images are embedded as ``data:image/png;base64`` URIs and the style is inline, so
it reads offline and can be mailed as one file. What the run folder already holds (``analysis/layers.json``,
``attention/attention.json``, ``ansatz/ansatz.json`` and their PNGs, as the ``srr analyze``/``attention``/``ansatz``
commands write them) is reused; what is missing is computed and written there first.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

__all__ = ["read_metrics", "plot_training", "render_html", "embed_png"]

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
            except json.JSONDecodeError:
                continue
    return [r for r in rows if isinstance(r, dict) and "epoch" in r]


def plot_training(rows: list[dict], path) -> None:
    """Two panels against the epoch: training and test loss, and test accuracy."""
    from .plotting import pyplot, save_png

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [r["epoch"] for r in rows]
    for key in ("train_loss", "test_loss"):
        if all(key in r for r in rows):
            a1.plot(epochs, [r[key] for r in rows], marker=".", label=key.replace("_", " "))
    if all("test_accuracy" in r for r in rows):
        a2.plot(epochs, [r["test_accuracy"] for r in rows], marker=".", color="tab:green")
    a1.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    a2.set(xlabel="epoch", ylabel="accuracy", title="test accuracy")
    a1.legend()
    for a in (a1, a2):
        a.grid(alpha=0.3)
    save_png(fig, path, dpi=110)


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
    header = ["layer"] + [f"{w} {lab}" for lab in labels for w in ("R^c", "sparsity")]
    rows = []
    for i, first in enumerate(rep["models"][labels[0]]):
        row = [first["layer"]]
        for lab in labels:
            r = rep["models"][lab][i]
            row += [r["compression_mean"], r["sparsity_mean"]]
        rows.append(row)
    note = (f"R^c(Z^ℓ | U^ℓ) of the MSSA input, tokens L2-normalised per head, ε = {rep['eps']}; sparsity = fraction "
            f"of non-zero entries of the layer output; mean over {rep['images']} test images.")
    return embed_png(png, "layer statistics") + _table(header, rows) + f'<p class="note">{html.escape(note)}</p>'


def _attention_section(rep: dict, grid: Path, overlay: Path) -> str:
    rows = [[r["layer"], r["head"], r["patch_mass"], r["entropy"], str(tuple(r["peak"]))] for r in rep["heads"]]
    note = (f"{rep['convention']}; test image {rep['index']} (label {rep['label']}). Entropy 1 = uniform over the "
            "patches." + (f" Note: {rep['note']}." if rep.get("note") else ""))
    return (embed_png(overlay, "attention overlays") + embed_png(grid, "attention maps") +
            _table(["layer", "head", "CLS mass on patches", "entropy", "peak patch"], rows) +
            f'<p class="note">{html.escape(note)}</p>')


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


def render_html(title: str, facts: list[tuple[str, str]], sections: list[tuple[str, str]]) -> str:
    """The page: a title, a table of facts and one ``<h2>`` section per ``(heading, html)``."""
    fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n<table>{fact_rows}</table>\n"
            f"{body}</body></html>\n")


SECTIONS = {"layers": _layers_section, "attention": _attention_section, "ansatz": _ansatz_section}
