"""Comparing training runs side by side: one table of their summaries and settings, and their curves overlaid.

:func:`compare_runs` reads, from each run folder written by ``srr train``, ``summary.json`` (the headline figures,
parameters, seconds, throughput), ``run.json`` (the model, data, objective and every setting) and ``metrics.jsonl``
(one record per round). The table has one row per run: its name (the folder's), model, objective, data, parameters,
rounds, every held-out figure any of the runs reports (``test_accuracy``, ``test_loss``, ``val_bpb``, …), seconds and
throughput; under it, the settings whose values differ between the runs (engine, objective and model settings).
``compare.png`` overlays the runs' curves: the training and held-out losses (one colour per run, training dashed;
a logarithmic axis only when every loss is positive) and the held-out figures, against the epoch or step.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError, DataFileNotFoundError, RunFolderError
from ..io import atomic_write_json, atomic_write_text
from .runs import MAX_RECORD_BYTES

__all__ = ["read_run", "compare_runs", "comparison_table", "plot_comparison"]

_HEADLINE_ORDER = ("test_accuracy", "test_loss", "test_nearest_subspace", "test_knn", "val_loss", "val_bpb")
_ROUND_KEYS = ("epoch", "step")


def _json(path: Path, what: str):
    from ..io import check_regular_file

    check_regular_file(path, RunFolderError)
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise RunFolderError(f"{path} is {size:,} bytes; a run's {path.name} is at most {MAX_RECORD_BYTES:,}")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileNotFoundError(f"{path.parent} holds no {path.name}: not a finished srr training run "
                                    f"({what})") from None
    except (ValueError, RecursionError) as exc:
        raise RunFolderError(f"{path} is not valid JSON ({exc})") from None


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _round(v) -> bool:
    """An epoch or step: a whole number in [0, 2⁵³] (a curve cannot be placed at 1e308)."""
    return _finite(v) and float(v).is_integer() and 0 <= v <= 2 ** 53


#: The numbers of ``summary.json`` that the table shows, with their lower bounds.
_SUMMARY_NUMBERS = {"parameters": 0, "epochs": 0, "rounds": 0, "steps": 0, "seconds": 0, "images_per_second": 0,
                    "tokens_per_second": 0}


def _check_summary(summary, path: Path) -> dict:
    """``summary.json`` as the table reads it: an object whose figures are finite numbers (a NaN accuracy or a
    string where seconds go is refused, naming the key, rather than printed as a plausible table)."""
    if not isinstance(summary, dict):
        raise RunFolderError(f"{path} holds a {type(summary).__name__}, not an object of figures")
    for key in (*_HEADLINE_ORDER, *_SUMMARY_NUMBERS):
        if key in summary and not isinstance(summary[key], (type(None), dict, list)):  # nested figures: not shown
            v = summary[key]
            if not _finite(v) or v < _SUMMARY_NUMBERS.get(key, -math.inf):
                raise RunFolderError(f"{path}: {key} is {v!r}, not a finite"
                                     f"{' non-negative' if key in _SUMMARY_NUMBERS else ''} number")
    for key in ("model", "objective", "data"):
        if key in summary and summary[key] is not None and not isinstance(summary[key], str):
            raise RunFolderError(f"{path}: {key} is {summary[key]!r}, not a name")
    return summary


def _check_record(run, path: Path) -> dict:
    """``run.json``: an object whose setting groups (``train``, ``objective_config``, ``model_config.args``) are
    objects."""
    if not isinstance(run, dict):
        raise RunFolderError(f"{path} holds a {type(run).__name__}, not an object")
    groups = {k: run.get(k) for k in ("train", "objective_config", "model_config")}
    if isinstance(run.get("model_config"), dict):
        groups["model_config.args"] = run["model_config"].get("args")
    for key, value in groups.items():
        if value is not None and not isinstance(value, dict):
            raise RunFolderError(f"{path}: {key} is a {type(value).__name__}, not an object of settings")
    return run


def read_run(folder: str | Path) -> dict:
    """One run's ``summary``, ``run`` record and ``history`` (the rounds of ``metrics.jsonl``)."""
    from ..checks import check_memory
    from ..io import check_regular_file
    from .runs import check_not_mixed

    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileNotFoundError(f"run folder not found: {folder}")
    check_not_mixed(folder)
    summary = _check_summary(_json(folder / "summary.json", "summary.json is written when a run ends"),
                             folder / "summary.json")
    run = _check_record(_json(folder / "run.json", "run.json"), folder / "run.json")
    history = []
    check_regular_file(folder / "metrics.jsonl", RunFolderError)
    if (folder / "metrics.jsonl").is_file():  # parsed records take about ten times the file's bytes
        check_memory(10 * (folder / "metrics.jsonl").stat().st_size, f"{folder / 'metrics.jsonl'}")
    try:
        for line in (folder / "metrics.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a torn last line after a crash
            if isinstance(record, dict) and any(_round(record.get(k)) for k in _ROUND_KEYS):
                history.append(record)  # a record without a finite epoch or step cannot be placed on a curve
    except FileNotFoundError:
        pass
    return {"name": folder.name, "path": str(folder), "summary": summary, "run": run, "history": history}


def _settings(run: dict) -> dict:
    rec = run["run"]
    out = {}
    for group, prefix in (("train", ""), ("objective_config", ""), (None, "model.")):
        values = (rec.get("model_config") or {}).get("args", {}) if group is None else rec.get(group) or {}
        out.update({f"{prefix}{k}": v for k, v in values.items() if not isinstance(v, (dict, list)) or k in
                    ("image_size", "patch_size")})
    return out


def comparison_table(runs: Sequence[dict]) -> dict:
    """``{"columns", "rows", "differences"}`` of :func:`read_run` results (see the module docstring)."""
    figures = [k for k in _HEADLINE_ORDER if any(isinstance(r["summary"].get(k), (int, float)) for r in runs)]
    rows = []
    for r in runs:
        s = r["summary"]
        unit = "images_per_second" if "images_per_second" in s else "tokens_per_second"
        row = {"run": r["name"], "model": s.get("model"), "objective": s.get("objective"), "data": s.get("data"),
               "parameters": s.get("parameters"), "rounds": s.get("epochs", s.get("rounds")), "steps": s.get("steps")}
        row.update({k: s.get(k) for k in figures})
        row.update({"seconds": s.get("seconds"), "throughput": s.get(unit)})
        rows.append(row)
    settings = [_settings(r) for r in runs]
    keys = sorted({k for s in settings for k in s})
    differences = {k: [s.get(k) for s in settings] for k in keys
                   if len({json.dumps(s.get(k), sort_keys=True) for s in settings}) > 1}
    columns = ["run", "model", "objective", "data", "parameters", "rounds", "steps", *figures, "seconds",
               "throughput"]
    return {"columns": columns, "rows": rows, "differences": differences}


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.4f}"
    return str(v)


def _setting(v) -> str:
    """A setting as given (``0.003``, ``4``, ``learned``); ``-`` where a run has no such setting."""
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:g}"
    return _cell(v)


def format_table(table: dict) -> str:
    """The table as Markdown (what ``srr compare`` prints and ``compare.md`` holds)."""
    cols = table["columns"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in cols) + " |" for row in table["rows"]]
    if table["differences"]:
        names = [row["run"] for row in table["rows"]]
        lines += ["", "| setting | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
        lines += [f"| {k} | " + " | ".join(_setting(v) for v in vals) + " |" for k, vals in table["differences"].items()]
    return "\n".join(lines) + "\n"


def plot_comparison(runs: Sequence[dict], path: str | Path) -> None:
    """The runs' curves overlaid (module docstring) as a PNG."""
    from .plotting import pyplot, save_png

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    positive, xs_names = True, set()
    for i, r in enumerate(runs):
        rows = r["history"]
        if not rows:
            continue
        xs = "epoch" if all(_round(q.get("epoch")) for q in rows) else "step"
        rows = [q for q in rows if _round(q.get(xs))]
        xs_names.add(xs)
        colour = colours[i % len(colours)]
        for key, style in (("train_loss", "--"), ("test_loss", "-"), ("val_loss", "-")):
            pts = [(q[xs], q[key]) for q in rows if _finite(q.get(key))]
            if pts:
                positive &= all(v > 0 for _, v in pts)
                a1.plot(*zip(*pts), style, marker=".", color=colour, label=f"{r['name']}: {key.replace('_', ' ')}")
        for j, key in enumerate(k for k in _HEADLINE_ORDER if k not in ("test_loss", "val_loss")):
            pts = [(q[xs], q[key]) for q in rows if _finite(q.get(key))]
            if pts:
                a2.plot(*zip(*pts), ["-", ":", "-.", "--"][j % 4], marker=".", color=colour,
                        label=f"{r['name']}: {key.replace('_', ' ')}")
    if positive and a1.lines:
        a1.set_yscale("log")
    xlabel = " / ".join(sorted(xs_names)) or "round"
    a1.set(xlabel=xlabel, ylabel="loss", title="losses (training dashed)")
    a2.set(xlabel=xlabel, ylabel="value", title="held-out figures")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.xaxis.get_major_locator().set_params(integer=True)  # epochs and steps are whole numbers
        if a.lines:
            a.legend(fontsize=7, loc="best")
        else:
            a.text(0.5, 0.5, "nothing recorded", ha="center", va="center", transform=a.transAxes, color="grey")
    save_png(fig, path)


def compare_runs(folders: Sequence[str | Path], out: str | Path | None = None) -> dict:
    """Read the run ``folders`` (each under a shared lock), build the table and, with ``out``, publish
    ``compare.json``, ``compare.md`` and ``compare.png`` there. Returns the table (with ``markdown``)."""
    from contextlib import ExitStack

    from ..runfolder import RunLock, check_output_folder, publish_folder

    if isinstance(folders, (str, Path)) or not folders:  # a string would be read character by character
        raise ConfigError("compare needs a list of one or more run folders")
    with ExitStack() as stack:
        runs = []
        for f in folders:
            if Path(f).is_dir():
                stack.enter_context(RunLock(f, exclusive=False))
            runs.append(read_run(f))
        names = [r["name"] for r in runs]
        for i, r in enumerate(runs):  # two folders of one name (a/run, b/run): tell them apart by their parents
            if names.count(r["name"]) > 1:
                r["name"] = f"{Path(r['path']).parent.name}/{r['name']}"
        table = comparison_table(runs)
        table["markdown"] = format_table(table)
        if out is not None:
            check_output_folder(out, [r["path"] for r in runs])
            with publish_folder(out) as tmp:
                atomic_write_json(tmp / "compare.json", {k: v for k, v in table.items() if k != "markdown"})
                atomic_write_text(tmp / "compare.md", table["markdown"])
                plot_comparison(runs, tmp / "compare.png")
    return table
