"""``srr convert``: the authors' official checkpoints (CRATE, CRATE-α, ToST, SimDINO) as srr models."""
from __future__ import annotations

NAME = "convert"
HELP = "convert an official checkpoint (CRATE .pth.tar, CRATE-α Flax .npz/.msgpack, ToST, SimDINO .pth) to an srr model"


def add_arguments(p) -> None:
    from .options import add_set_argument

    p.add_argument("src", metavar="SRC", help="the checkpoint file")
    p.add_argument("dest", metavar="DEST", help="the folder to write (config.json, model.safetensors, README.md)")
    p.add_argument("--kind", choices=["crate", "crate_alpha", "tost", "simdino"],
                   help="the checkpoint's source (default: detected from the file)")
    p.add_argument("--which", choices=["teacher", "student"], default=None,
                   help="SimDINO: the network to convert (default teacher)")
    add_set_argument(p)


def run(args) -> int:
    from ..analysis.runs import parse_overrides
    from ..interop.convert import convert
    from ..models import count_parameters
    from ..runfolder import output_path

    out = output_path(args.dest, "DEST")
    model = convert(args.src, out, args.kind, parse_overrides(args.set), args.which)
    print(f"wrote {out}: {model.name} ({count_parameters(model):,} parameters) from {args.src}")
    return 0
