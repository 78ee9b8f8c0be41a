"""SIGKILL a real `srr train` run at random instants, many times, resuming each time; count the kills, how many hit a
checkpoint write, and check that every time the newest complete checkpoint loads and that the final weights equal
those of an uninterrupted run.

    PYTHONPATH=src python benchmarks/kill_training.py [--kills 30] [--max-delay 1.5] [--epochs 3] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from srr.training.checkpoint import find_latest, load_checkpoint  # noqa: E402

ARGS = ["--batch-size", "32", "--checkpoint-every", "1", "--log-every", "1", "--shift", "1",
        "--no-progress", "--no-tensorboard", "--seed", "7"]  # the demo model on digits: 45 steps per epoch
RESULT = ROOT / "benchmarks" / "results" / "kill_training.json"


def launch(*argv) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "srr", "train", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=30)
    p.add_argument("--max-delay", type=float, default=1.5)
    p.add_argument("--epochs", type=int, default=3, help="epochs of the trained run (default 3)")
    p.add_argument("--out", default=str(RESULT), help="result file (default benchmarks/results/kill_training.json)")
    args = p.parse_args(argv)
    args_ = ["--epochs", str(args.epochs), *ARGS]
    rng = random.Random()
    work = Path(tempfile.mkdtemp(prefix="srr-kill-"))
    ref, run = work / "ref", work / "run"
    assert launch(*args_, "--out", str(ref)).wait() == 0
    kills, in_write, steps_seen, finished = 0, 0, [], False
    for i in range(args.kills):
        proc = launch("--resume", str(run)) if find_latest(run) else launch(*args_, "--out", str(run))
        before = find_latest(run)
        while proc.poll() is None and find_latest(run) == before:  # wait until it trains (a new checkpoint)
            time.sleep(0.01)
        time.sleep(rng.uniform(0, args.max_delay))
        if proc.poll() is not None:
            finished = True
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        in_write += bool(list((run / "checkpoints").glob(".tmp-*")))
        latest = find_latest(run)
        _, state, meta = load_checkpoint(latest)  # raises if anything is incomplete
        steps_seen.append(meta["step"])
        assert state["position"]["step"] == meta["step"]
    if not finished:
        proc = launch("--resume", str(run))
        assert proc.wait() == 0, proc.stderr.read()
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    identical = all(torch.equal(a[k], b[k]) for k in a)
    record = {"kills": kills, "kills_during_a_checkpoint_write": in_write, "checkpoint_steps_after_each_kill":
              steps_seen, "all_latest_loaded": True, "final_weights_identical": identical,
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"{kills} SIGKILLs of a training run ({in_write} inside a checkpoint write): latest checkpoint complete "
          f"after every one; final weights identical to the uninterrupted run: {identical}")


if __name__ == "__main__":
    main()
