"""Shared pieces of the training tests: a tiny model on a tiny synthetic data set, run through the CLI."""
import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from paths import ROOT, SHARED_DATA

DATA = "synthetic:k=4,d=16,n=40"  # 128 training vectors as 1 x 16 images, 4 classes
TINY = ["--model", "crate_nano", "--data", DATA, "--set", "dim=16", "--set", "depth=2", "--set", "heads=2",
        "--set", "patch_size=[1,4]", "--no-progress", "--no-tensorboard"]


def text_file(tmp_path) -> Path:
    """Tiny Shakespeare when the shared data is beside the checkout, else a generated text of 60 KB."""
    shared = SHARED_DATA / "tinyshakespeare" / "input.txt"
    if shared.is_file():
        return shared
    import random

    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "his", "bed"]
    path = Path(tmp_path) / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(8)) for _ in range(1500)), encoding="utf-8")
    return path


def tiny_lm(text: Path) -> list[str]:
    """A two-layer CRATE-GPT of width 32 on windows of 32 bytes of ``text``."""
    return ["--model", "crate_gpt_nano", "--data", f"text:{text}", "--set", "dim=32", "--set", "depth=2", "--set",
            "heads=2", "--set", "context=32", "--batch-size", "8", "--eval-tokens", "512", "--no-progress",
            "--no-tensorboard"]


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



def kill_at_step(proc, run_dir, step: int, sig=None, timeout: float = 240) -> int:
    """Send ``sig`` (SIGKILL) to ``proc`` once ``run_dir``'s steps.jsonl reaches ``step``; returns its exit code."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if steps(run_dir) and steps(run_dir)[-1]["step"] >= step:
            proc.send_signal(signal.SIGKILL if sig is None else sig)
            break
        time.sleep(0.002)
    return proc.wait(timeout=120)
