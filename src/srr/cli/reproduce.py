"""``srr reproduce``: the published claims of the family as experiments with a verdict."""
from __future__ import annotations

NAME = "reproduce"
HELP = "run published claims (CRATE, the SRR study, ReduNet, MCR², AoT, ToST, …) and judge each: reproduced or not"


def add_arguments(p) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="claims to run (see --list)")
    p.add_argument("--all", action="store_true", help="run every claim")
    p.add_argument("--list", action="store_true", help="list the claims, their published figures and CPU cost")
    p.add_argument("--scale", default="cpu", choices=["tiny", "cpu", "paper"],
                   help="tiny: a smoke test of seconds (verdicts mean nothing); cpu: minutes on 2 cores (default); "
                        "paper: the papers' protocols (a GPU and the papers' data)")
    p.add_argument("--seeds", type=int, help="seeds per claim (default: the claim's own, 3 for most at cpu)")
    p.add_argument("--data", action="append", default=[], metavar="SPEC",
                   help="data a protocol reads, by source: idx:DIR (the MNIST folder), cifar10:DIR, folder:DIR "
                        "(ImageNet); repeatable. Without it a CPU protocol falls back to digits and says so")
    p.add_argument("--out", help="output folder (default runs/claims-SCALE); refused if it holds another run")
    p.add_argument("--resume", action="store_true",
                   help="reuse the measurements already cached in --out (an interrupted or partial run)")
    p.add_argument("--overwrite", action="store_true", help="replace the srr output of another run in --out")
    p.add_argument("--jobs", type=int, help="claims run at once in worker processes (default: one per CPU core; 1 "
                                            "at --scale paper)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _list() -> int:
    from ..claims import get_claim, list_claims
    from ..claims.runner import reads

    for name in list_claims():
        c = get_claim(name)
        source = reads(name, "cpu")
        data = f"; reads --data {source}:DIR" if source else ""
        cost = "< 1 min" if c.minutes < 1 else f"~{c.minutes:.0f} min"
        print(f"{name:26s} {c.kind:5s} {cost} of CPU at cpu{data}")
        print(f"{'':26s} {c.title}")
        print(f"{'':26s} published: {c.published}")
    return 0


def run(args) -> int:
    from ..claims import list_claims, reproduce
    from ..errors import ConfigError

    if args.list:
        if args.names or args.all:
            raise ConfigError("--list takes no claim names and no --all")
        return _list()
    if args.all and args.names:
        raise ConfigError("give claim names or --all, not both")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    names = list_claims() if args.all else args.names
    results = reproduce(names, scale=args.scale, seeds=args.seeds, out=args.out or f"runs/claims-{args.scale}",
                        data=args.data, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                        jobs=args.jobs)
    rows = [results["claims"][n] for n in dict.fromkeys(names)]
    counts = {v: sum(r["verdict"] == v for r in rows) for v in dict.fromkeys(r["verdict"] for r in rows)}
    out = args.out or f"runs/claims-{args.scale}"
    print(", ".join(f"{c} {v}" for v, c in counts.items()) + f"; wrote {out}/claims.md, claims.html, results.json")
    return 1 if counts.get("failed") else 0
