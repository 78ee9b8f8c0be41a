"""Crashes: a run SIGKILLed at an arbitrary step resumes to exactly the uninterrupted weights; SIGKILL at any point of a
checkpoint write (every stage boundary, then random instants) never leaves a corrupt latest checkpoint."""
import json
import os
import random
import signal
import time

import pytest
import torch

from srr.cli import main
from srr.training import checkpoint as ckpt
from training_helpers import TINY, kill_at_step, srr_process, steps, weights

RUN = [*TINY, "--epochs", "4", "--batch-size", "16", "--log-every", "1", "--checkpoint-every", "3", "--seed", "2",
       "--shift", "1"]  # 8 steps per epoch; shift augmentation draws from the resumed generator


def test_sigkill_at_a_random_step_then_resume_gives_identical_weights(tmp_path, capsys, one_thread):
    assert main(["train", *RUN, "--out", str(tmp_path / "ref")]) == 0
    run = tmp_path / "run"
    kill_at = random.Random(5).randint(4, 26)  # seeded: the same instant on every run
    proc = srr_process("train", *RUN, "--out", str(run))
    assert kill_at_step(proc, run, kill_at) == -signal.SIGKILL, f"the run ended before step {kill_at}"
    reached = steps(run)[-1]["step"]
    latest = ckpt.find_latest(run)
    assert latest is not None and int(latest.name.split("-")[1]) <= reached
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    ref, resumed = weights(tmp_path / "ref"), weights(run)
    assert all(torch.equal(ref[k], resumed[k]) for k in ref), f"killed at step {reached}"
    assert [r["epoch"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())] == [1, 2, 3, 4]
    assert steps(run) == [{**r, "images_per_s": s["images_per_s"]} for r, s in zip(steps(tmp_path / "ref"),
                                                                                      steps(run))]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from"] == str(latest) and summary["steps"] == 32


BIG = torch.arange(200_000, dtype=torch.float32)  # made before any fork: a forked child runs no parallel kernel


@pytest.mark.slow
def test_resume_from_every_checkpoint_position_gives_identical_weights(tmp_path, capsys, one_thread):
    import shutil

    argv = [*TINY, "--epochs", "2", "--batch-size", "32", "--checkpoint-every", "1", "--keep-checkpoints", "100",
            "--shift", "1", "--mixup", "0.2", "--seed", "4"]  # 4 steps per epoch: mid-epoch and epoch boundaries
    assert main(["train", *argv, "--out", str(tmp_path / "ref")]) == 0
    ref = weights(tmp_path / "ref")
    saved = ckpt.list_checkpoints(tmp_path / "ref")
    assert [p.name for p in saved] == [f"step-{s:09d}" for s in range(1, 9)]
    for keep in saved[:-1]:
        run = tmp_path / keep.name
        shutil.copytree(tmp_path / "ref", run)
        for later in ckpt.list_checkpoints(run):
            if later.name > keep.name:
                shutil.rmtree(later)
        (run / "model.safetensors").unlink()
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0
        resumed = weights(run)
        assert all(torch.equal(ref[k], resumed[k]) for k in ref), f"resumed from {keep.name}"


def _tensors(step: int) -> dict:
    return {"big": BIG, "step": torch.tensor([float(step)])}


def _state(step: int) -> dict:
    return {"position": {"step": step}, "rng": [{"torch": torch.zeros(8, dtype=torch.uint8)}], "history": []}


def _save(run, step: int) -> None:
    ckpt.save_checkpoint(run, step, _tensors(step), _state(step), {"epoch": 0}, keep=2)


def _in_child(fn) -> int:
    """Run ``fn`` in a forked child; return the signal that ended it (0 if it exited)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        torch.set_num_threads(1)  # OpenMP's pool does not survive fork()
        try:
            fn()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def _check(run, allowed: set[int]) -> int:
    latest = ckpt.find_latest(run)
    assert latest is not None
    model, state, meta = ckpt.load_checkpoint(latest)
    step = int(model["step"].item())
    assert step in allowed and meta["step"] == step == state["position"]["step"]
    assert torch.equal(model["big"], _tensors(0)["big"])
    return step


STAGES = ["tmpdir", "model.safetensors", "state.pt", "meta.json", "synced", "kept", "renamed", "latest", "pruned"]


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_every_stage_of_a_checkpoint_write(tmp_path, stage):
    run = tmp_path / "run"
    for s in (1, 2):
        _save(run, s)
    new = 2 if stage == "kept" else 3  # "kept": the same step written again keeps the complete copy

    def crash(point):
        if point == stage:
            os.kill(os.getpid(), signal.SIGKILL)

    def child():
        ckpt.crash_point = crash
        _save(run, new)

    assert _in_child(child) == signal.SIGKILL
    after_commit = STAGES.index(stage) >= STAGES.index("renamed")
    assert _check(run, {2, 3}) == (new if after_commit else 2)
    _save(run, new + 1)  # the next save cleans up and goes on
    assert _check(run, {new + 1}) == new + 1
    assert not list((run / "checkpoints").glob(".tmp-*"))


@pytest.mark.slow
def test_sigkill_at_random_instants_while_checkpointing(tmp_path):
    run, rng = tmp_path / "run", random.Random(3)  # seeded delays (the instants still vary with the load)
    _save(run, 1)
    step, kills, mid_write = 1, 0, 0
    for _ in range(40):
        start = step + 1
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child saves checkpoints as fast as it can
            torch.set_num_threads(1)
            os.write(ready_w, b"x")
            for s in range(start, start + 10_000):
                _save(run, s)
            os._exit(0)
        os.read(ready_r, 1)
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r), os.close(ready_w)
        kills += 1
        mid_write += bool(list((run / "checkpoints").glob(".tmp-*")))
        new = _check(run, set(range(step, start + 10_000)))
        assert new >= step
        step = new
    assert kills == 40 and step > 1
    print(f"{kills} random kills, {mid_write} inside a write, newest complete step {step}")
