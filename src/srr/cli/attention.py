"""``srr attention``: CLS-token attention maps of one image, per layer and head, as PNG grids and overlays."""
from __future__ import annotations

NAME = "attention"
HELP = "CLS attention maps of one test image per layer and head (grid, overlay on the image, JSON)"


def add_arguments(p) -> None:
    from .options import add_set_argument, add_source_arguments

    add_source_arguments(p, "attention")
    p.add_argument("--index", type=int, default=0, help="index of the test image (default 0)")
    p.add_argument("--image-size", type=int,
                   help="resize the image (bicubic) to this size first; positions are interpolated to match")
    p.add_argument("--seed", type=int, default=0, help="seed of a model built from a name")
    add_set_argument(p)


def run(args) -> int:
    from pathlib import Path

    from ..data import load_data
    from ..io import ensure_writable_dir
    from .options import load_source

    if args.image_size is not None and args.image_size < 1:
        from ..errors import ConfigError

        raise ConfigError(f"--image-size must be positive, got {args.image_size}")
    model, name, _, spec, out, label = load_source(args.source, args.data, args.set, args.seed, "attention")
    out = Path(args.out) if args.out else out
    ensure_writable_dir(out)  # fail before the work, not after it
    report = produce(model, f"{name} ({label})", load_data(spec), args.index, out, args.image_size)
    print(f"{'layer':>5}  {'head':>4}  {'patch mass':>10}  {'entropy':>7}  peak")
    for r in report["heads"]:
        print(f"{r['layer']:>5}  {r['head']:>4}  {r['patch_mass']:>10.3f}  {r['entropy']:>7.3f}  {tuple(r['peak'])}")
    print(f"wrote {out / 'attention_grid.png'}, {out / 'attention_overlay.png'} and {out / 'attention.json'}")
    return 0


def produce(model, title: str, data, index: int, out, image_size: int | None = None) -> dict:
    """Write ``attention_grid.png``, ``attention_overlay.png`` and ``attention.json`` for test image ``index``."""
    from ..analysis.attention import (attention_summary, cls_attention, plot_attention_grid, plot_attention_overlay,
                                      resize_images, upsample_maps)
    from ..errors import ConfigError
    from ..io import atomic_write_json, ensure_writable_dir

    if not 0 <= index < len(data.x_test):
        raise ConfigError(f"--index must be in [0, {len(data.x_test)}), got {index}")
    x = data.x_test[index:index + 1]
    if image_size:
        x = resize_images(x, image_size)
    maps = cls_attention(model, x)[:, 0]  # (L, K, gh, gw)
    patch = getattr(model, "patch_hw", (x.shape[2] // maps.shape[-2], x.shape[3] // maps.shape[-1]))
    up = upsample_maps(maps, patch)
    label = int(data.y_test[index])
    title = f"{title}, {data.spec} test image {index}, label {label}"
    ensure_writable_dir(out)
    plot_attention_grid(up, out / "attention_grid.png", title)
    plot_attention_overlay(data.unnormalize(x)[0], up, out / "attention_overlay.png", title)
    report = {"title": title, "data": data.spec, "index": index, "label": label, "image_size": list(x.shape[2:]),
              "grid": list(maps.shape[-2:]), "patch": list(patch),
              "convention": "CLS row A[0, 1:] of softmax attention per layer and head, reshaped to the patch grid",
              "heads": attention_summary(maps)}
    if getattr(model, "pool", None) == "mean":
        report["note"] = "this model pools by the mean of all tokens: its CLS token does not reach the head"
    atomic_write_json(out / "attention.json", report)
    return report
