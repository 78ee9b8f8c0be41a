"""Evaluating a saved model on a data split, and predicting the classes of image files.

:func:`evaluate` runs a saved image classifier over a split: the mean cross-entropy, the accuracy, the accuracy of
every class (its recall: correct / items of that class) and the confusion matrix ``C[i, j]`` = items of class i
predicted as j, written as ``evaluation.json`` and ``confusion.png`` (rows normalised, counts printed); a language
model over its validation windows: nats per token and bits per byte (``loss / ln 2``, the tokenizer being bytes).

:func:`predict` prepares image files exactly as the run's data source prepared its images, from what ``config.json``
records (``preprocessing``: ``image_size``, ``channels``, ``mean``, ``std``, maybe ``resize``): any format Pillow
reads, converted to one channel or RGB, the centred square (side: the shorter side) cut and resized bilinearly to
the recorded size (a non-square size: the whole image resized), pixel values in [0, 1] standardised per channel,
then resized to ``resize`` when the run trained at another size. It returns the top-k classes with their softmax
probabilities.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_finite_tree, check_int, check_memory
from ..errors import ConfigError, DataError
from ..io import atomic_write_json
from .runs import Source

__all__ = ["evaluate", "evaluate_images", "evaluate_text", "predict", "load_images", "plot_confusion"]


def _check_image_model(src: Source, what: str) -> None:
    if src.task != "image" or not hasattr(src.model, "config") or not hasattr(src.model.config, "num_classes"):
        raise ConfigError(f"{what} needs an image classifier; {src.path or src.name} is a {src.task} model"
                          + (" (use srr generate for a language model)" if src.task == "lm" and what == "predict"
                             else ""))


def _resize_to(src: Source) -> int:
    return (src.record.get("preprocessing") or {}).get("resize") or 0  # checked when config.json was read


@torch.no_grad()
def evaluate_images(model: nn.Module, data, batch_size: int = 256, resize: int = 0, split: str = "test") -> dict:
    """Loss, accuracy, per-class accuracy and the confusion matrix of an image classifier on a split of ``data``."""
    from ..checks import check_choice
    from ..data.augment import resize_batch

    batch_size = check_int(batch_size, "batch size", low=1, high=1 << 20)
    split = check_choice(split, "split", ("test", "train"))
    resize = check_int(resize, "resize", low=0, high=16384)
    dataset = data.test_set if split == "test" else data.train_set
    k = int(data.num_classes)
    channels = getattr(getattr(model, "config", None), "channels", data.channels)
    classes = getattr(getattr(model, "config", None), "num_classes", k)
    if channels != data.channels:
        raise DataError(f"{data.spec} has {data.channels} channel(s), the model takes {channels}")
    if k > classes:
        raise DataError(f"{data.spec} has {k} classes, the model only {classes} outputs")
    check_memory(k * k * 8, f"a confusion matrix of {k} classes")
    n = len(dataset)
    if n:  # the batch itself (a lower estimate: the model's activations come on top)
        item = dataset.__getitems__([0])[0]
        pixels = max(item[0].numel(), item.shape[1] * resize * resize)  # the batch as the model sees it
        check_memory(2 * min(batch_size, n) * pixels * item.element_size(),
                     f"a batch of {min(batch_size, n)} images of {tuple(item.shape[1:])}"
                     f"{f' resized to {resize}' if resize else ''} (--batch-size)")
    model.eval()
    device = next(model.parameters()).device
    confusion = torch.zeros(k, k, dtype=torch.long)
    loss_sum, n = 0.0, len(dataset)
    for start in range(0, n, batch_size):
        xb, yb = dataset.__getitems__(list(range(start, min(n, start + batch_size))))
        logits = model(resize_batch(xb.to(device), resize)).float()
        if not bool(torch.isfinite(logits).all()):
            raise DataError(f"the model gave non-finite logits on items {start}..{start + len(yb) - 1} of "
                            f"{data.spec}")
        loss_sum += float(F.cross_entropy(logits, yb.to(device), reduction="sum"))
        pred = logits.argmax(-1).cpu()
        ok = pred < k  # a model with more outputs than the data has classes: such a prediction is simply wrong
        confusion.view(-1).index_add_(0, yb[ok] * k + pred[ok], torch.ones(int(ok.sum()), dtype=torch.long))
    per_class_n = confusion.sum(1)
    correct = confusion.diag()
    per_class = [float(correct[i] / per_class_n[i]) if per_class_n[i] else None for i in range(k)]
    return {"split": split, "items": n, "loss": loss_sum / n, "accuracy": float(correct.sum()) / n,
            "per_class_accuracy": per_class, "per_class_items": per_class_n.tolist(),
            "confusion": confusion.tolist()}


@torch.no_grad()
def evaluate_text(model: nn.Module, data, batch_size: int = 16, max_tokens: int = 0) -> dict:
    """Next-token cross-entropy (nats per token) and bits per byte over the validation windows of ``data``."""
    from ..data.windows import validation_windows

    batch_size = check_int(batch_size, "batch size", low=1, high=1 << 20)
    model.eval()
    device = next(model.parameters()).device
    tokens = data.val
    max_tokens = check_int(max_tokens, "max tokens", low=0, high=1 << 40)
    c, starts = validation_windows(len(tokens), getattr(model, "context", 128), max_tokens)
    if 0 < max_tokens < c:  # one window is the least that can be evaluated: more targets than asked, silently
        raise ConfigError(f"--max-tokens {max_tokens} is less than one window of {c} tokens; give 0 (the whole "
                          f"split) or at least {c}")
    total, count = 0.0, 0
    for i in range(0, len(starts), batch_size):
        s = starts[i:i + batch_size]
        idx = s.unsqueeze(1) + torch.arange(c + 1)
        w = tokens[idx].to(device)
        logits = model(w[:, :-1]).float()
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum"))
        count += w[:, 1:].numel()
    loss = total / count
    return {"split": "validation", "tokens": count, "loss": loss, "bits_per_byte": loss / math.log(2)}


def plot_confusion(confusion: list[list[int]], path: str | Path, title: str = "") -> None:
    """The confusion matrix as a PNG: each row normalised to sum 1 (colour), the counts printed when it is small."""
    from .plotting import pyplot, save_png

    plt = pyplot()
    c = torch.tensor(confusion, dtype=torch.float64)
    k = c.shape[0]
    rows = (c / c.sum(1, keepdim=True).clamp_min(1)).numpy()
    size = min(12.0, 3.0 + 0.35 * k)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(rows, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    if k <= 30:
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        for i in range(k):
            for j in range(k):
                if c[i, j]:
                    ax.text(j, i, f"{int(c[i, j])}", ha="center", va="center", fontsize=7,
                            color="black" if rows[i, j] > 0.6 else "white")
    ax.set(xlabel="predicted class", ylabel="true class", title=title or "confusion matrix")
    save_png(fig, path)


def evaluate(src: Source, data, out: str | Path | None = None, batch_size: int = 256, max_tokens: int = 0) -> dict:
    """Evaluate an opened model (:func:`srr.analysis.open_source`) on ``data`` (:func:`source_data`); with ``out``,
    write ``evaluation.json`` (and ``confusion.png`` for a classifier) there, published whole. Returns the report."""
    from ..runfolder import publish_folder

    if src.task == "lm":
        result = evaluate_text(src.model, data, min(batch_size, 64), max_tokens)
    else:
        _check_image_model(src, "evaluate")
        result = evaluate_images(src.model, data, batch_size, _resize_to(src))
    report = check_finite_tree({"model": src.name, "source": str(src.path or src.name), "data": data.spec,
                                **result}, "the evaluation")
    if out is not None:
        with publish_folder(out) as tmp:
            atomic_write_json(tmp / "evaluation.json", report)
            if "confusion" in report:
                plot_confusion(report["confusion"], tmp / "confusion.png",
                               f"{src.name} on {data.spec}: accuracy {report['accuracy']:.4f}")
    return report


# ---- prediction ----

def load_images(files: Sequence[str | Path], preprocessing: dict) -> Tensor:
    """Image files as the model's input batch (B, C, H, W), prepared as the run's data were (module docstring)."""
    if isinstance(files, (str, Path)) or not len(files):
        raise ConfigError("load_images needs a list of one or more image files")
    import numpy as np
    from PIL import Image

    from ..data.augment import resize_batch
    from ..data.folder import _decode, open_image
    from ..models.hub import check_preprocessing

    preprocessing = check_preprocessing(preprocessing)  # also when given here rather than read from config.json
    size = preprocessing["image_size"]
    h, w = (size, size) if isinstance(size, int) else (size[0], size[-1])
    channels = preprocessing["channels"]
    mean = torch.tensor(preprocessing["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing["std"]).view(1, -1, 1, 1)
    if channels not in (1, 3):
        raise ConfigError(f"predict reads images of 1 or 3 channels; the preprocessing records {channels}")
    resize = preprocessing.get("resize") or 0
    check_memory(len(files) * channels * max(h * w, resize * resize) * 9,
                 f"{len(files)} image(s) of {channels} x {max(h, resize)} x {max(w, resize)}")
    mode = "L" if channels == 1 else "RGB"
    batch = []
    for f in files:
        path = Path(f)
        if h == w:
            arr = _decode(path, h, mode)
        else:
            with open_image(path) as img:
                arr = np.asarray(img.convert(mode).resize((w, h), Image.BILINEAR), dtype=np.uint8)
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        batch.append(torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True)))
    x = (torch.stack(batch).float() / 255.0 - mean) / std
    return resize_batch(x, resize)


@torch.no_grad()
def predict(src: Source, files: Sequence[str | Path], top_k: int = 5, preprocessing: dict | None = None) -> list[dict]:
    """The ``top_k`` classes and their probabilities for each image file. ``preprocessing`` defaults to what the
    model's folder recorded; a model without a record (a registry name, a converted checkpoint) needs it given."""
    _check_image_model(src, "predict")
    if not files:
        raise ConfigError("predict needs at least one image file")
    pre = preprocessing or src.record.get("preprocessing")
    if not pre:
        raise ConfigError(f"{src.path or src.name} records no preprocessing (mean, std, image size); predict needs "
                          "a model saved by srr train, or the preprocessing given")
    classes = int(src.model.config.num_classes)
    top_k = check_int(top_k, "top-k", low=1, high=classes)
    x = load_images(files, pre)
    model = src.model.eval()
    logits = model(x.to(next(model.parameters()).device)).float()
    if not bool(torch.isfinite(logits).all()):
        raise DataError("the model gave non-finite logits on " + ", ".join(
            str(f) for f, ok in zip(files, torch.isfinite(logits).all(-1).tolist()) if not ok))
    probs = torch.softmax(logits, -1).cpu()
    p, idx = probs.topk(top_k, dim=-1)
    return [{"file": str(f), "top": [{"class": int(i), "probability": float(q)} for q, i in zip(p[b], idx[b])]}
            for b, f in enumerate(files)]
