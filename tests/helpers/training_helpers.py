"""Shared pieces of the training tests: a tiny model on a tiny synthetic data set, run through the CLI."""
import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from paths import ROOT
DATA = "synthetic:k=4,d=16,n=40"  # 128 training vectors as 1 x 16 images, 4 classes
TINY = ["--model", "crate_nano", "--data", DATA, "--set", "dim=16", "--set", "depth=2", "--set", "heads=2",
        "--set", "patch_size=[1,4]", "--no-progress", "--no-tensorboard"]


def env(threads: int = 1) -> dict:
    e = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS=str(threads))
    e.pop("RANK", None), e.pop("WORLD_SIZE", None)
    return e


def srr_process(*argv, torchrun: int = 0, **kw):
    """``python -m srr …`` (or under ``torch.distributed.run`` with ``torchrun`` processes) as a Popen."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"] \
        if torchrun else [sys.executable]
    return subprocess.Popen([*launcher, "-m", "srr", *argv], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def weights(run_dir) -> dict:
    return load_file(str(Path(run_dir) / "model.safetensors"))


def steps(run_dir) -> list[dict]:
    path = Path(run_dir) / "steps.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)

