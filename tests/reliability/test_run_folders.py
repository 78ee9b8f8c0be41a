"""Run folders never mix or lose work (issue: reliability, class 1). Each example the hostile tester found is a case
here, with real processes where the guarantee is about processes, and further cases of the same class:

* a folder holding another run is refused unless --overwrite or --resume (which removes only srr's own files);
* one owner at a time: a lock, so two trainings into one folder cannot mix (the second is refused, the first intact);
* an interrupt (SIGINT) with the default settings writes a checkpoint, and --resume ends where an uninterrupted run
  ends;
* multi-file outputs are published whole: reports killed at random instants leave nothing a later report trips on;
* outputs never land on inputs; leftovers of failed writes (a full disk) are cleaned or ignored.
"""
import errno
import json
import os
import random
import signal
import time

import pytest

from srr.analysis import build_report
from srr.cli import main
from srr.errors import RunFolderError
from srr.training import checkpoint as ckpt
from reliability_counts import tried
from training_helpers import TINY, kill_at_step, max_diff, srr_process, steps, text_file, tiny_lm, weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_folder_holding_another_run_is_refused_unless_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    first = ["train", *TINY, "--epochs", "1", "--checkpoint-every", "1", "--out", str(out)]
    assert main(first) == 0
    before = weights(out)
    assert main(["train", *TINY, "--epochs", "2", "--set", "dim=8", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds another run (run.json, config.json, model.safetensors, summary.json" in err
    assert max_diff(weights(out), before) == 0  # untouched
    (out / "notes.txt").write_text("mine")  # a file srr did not write survives --overwrite
    assert main(["train", *TINY, "--epochs", "2", "--set", "dim=8", "--overwrite", "--out", str(out)]) == 0
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-000000002"]  # none left of the first run (step 1)
    assert weights(out)["pos_embedding"].shape[-1] == 8 and (out / "notes.txt").read_text() == "mine"
    assert main(["train", *TINY, "--out", ""]) == 2
    assert "--out must name a folder, got an empty string" in capsys.readouterr().err


@pytest.mark.slow
def test_two_trainings_into_one_folder_one_refused_the_other_intact(tmp_path, capsys):
    argv = [*TINY, "--epochs", "300", "--batch-size", "16", "--log-every", "1", "--seed", "1"]  # ~10 s
    assert main(["train", *argv, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "run"
    first = srr_process("train", *argv, "--out", str(out))
    deadline = time.monotonic() + 120
    while not steps(out) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = srr_process("train", *argv, "--overwrite", "--out", str(out))  # not even --overwrite takes it
    text, _ = second.communicate(timeout=120)  # the first's pid in the refusal: it held the folder at that moment
    assert second.returncode == 2 and f"is in use by another srr process (pid {first.pid})" in text, text
    assert first.wait(timeout=240) == 0
    assert max_diff(weights(out), weights(tmp_path / "ref")) == 0
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_sigint_with_default_settings_checkpoints_and_resume_equals_the_uninterrupted_run(tmp_path, capsys):
    argv = [*TINY, "--epochs", "5", "--batch-size", "16", "--log-every", "1", "--seed", "2", "--shift", "1"]
    assert main(["train", *argv, "--out", str(tmp_path / "ref")]) == 0
    run = tmp_path / "run"
    proc = srr_process("train", *argv, "--out", str(run))  # default: no periodic checkpoints
    kill_at_step(proc, run, 11, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted at step" in out and f"--resume {run}" in out
    latest = ckpt.find_latest(run)
    assert latest is not None and json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert not (run / "model.safetensors").exists()  # the final save belongs to the end of the run
    assert main(["train", "--resume", str(run)]) == 0
    assert max_diff(weights(run), weights(tmp_path / "ref")) == 0
    assert [r["epoch"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())] == [1, 2, 3, 4, 5]


def test_outputs_never_land_on_inputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    weights = (out / "model.safetensors").read_bytes()
    assert main(["report", str(out), "--out", str(out / "model.safetensors")]) == 2
    assert "model.safetensors is an input of this command; refusing to write over it" in capsys.readouterr().err
    (tmp_path / "mine.html").write_text("<p>my notes</p>")
    assert main(["report", str(out), "--out", str(tmp_path / "mine.html")]) == 2
    assert "exists and was not written by srr" in capsys.readouterr().err
    assert main(["analyze", str(out), "--out", str(out)]) == 2
    assert "holds a model or run" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == weights


@pytest.mark.slow
def test_report_killed_at_random_instants_then_a_report_succeeds(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    rng = random.Random(11)
    kills = 0
    for _ in range(6):
        proc = srr_process("report", str(out), "--samples", "32", "--ansatz-samples", "32", "--refresh")
        time.sleep(rng.uniform(0.5, 4.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=120)
    assert kills >= 3
    assert main(["report", str(out), "--samples", "32", "--ansatz-samples", "32"]) == 0
    for sub, files in (("analysis", ("layers.json", "layers.png")), ("ansatz", ("ansatz.json", "ansatz.png"))):
        assert all((out / sub / f).stat().st_size > 0 for f in files)
    assert not [p for p in out.iterdir() if p.name.startswith((".srr-new", ".srr-old"))]


def test_a_run_in_training_is_not_reported(tmp_path, capsys):
    from srr.runfolder import RunLock

    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    with RunLock(out):  # what a training holds while it runs
        with pytest.raises(RunFolderError, match="in use by another srr process"):
            build_report(out)
        assert main(["analyze", str(out)]) == 2
    assert "in use by another srr process" in capsys.readouterr().err



def test_a_full_disk_during_a_checkpoint_leaves_nothing_that_breaks_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--batch-size", "64", "--checkpoint-every", "1", "--out",
                 str(out)]) == 0
    real = ckpt._write_synced
    calls = []

    def full(path, data):  # the disk fills up while the second file of a checkpoint is written
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(ckpt, "_write_synced", full)
    with pytest.raises(OSError, match="No space left"):
        ckpt.save_checkpoint(out, 99, {"w": __import__("torch").zeros(2)}, {"position": {}}, {"round": 0})
    monkeypatch.setattr(ckpt, "_write_synced", real)
    assert not list((out / "checkpoints").glob(".tmp-*"))  # the half-written folder is gone
    (out / "checkpoints" / ".tmp-step-000000100-stale").mkdir()  # what a SIGKILL mid-save leaves
    (out / "checkpoints" / ".tmp-step-000000100-stale" / "model.safetensors").write_bytes(b"")
    (out / ".summary.json.abcd.tmp").write_bytes(b"")  # … or mid atomic write
    assert ckpt.find_latest(out).name == "step-000000004"
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 0
    assert not (out / ".summary.json.abcd.tmp").exists() and not list((out / "checkpoints").glob(".tmp-*"))
    tried("run_folder_cases")


def test_every_run_kind_writes_checkpoints(tmp_path, capsys):
    run = tmp_path / "lm"
    assert main(["train", *tiny_lm(text_file(tmp_path)), "--steps", "4", "--eval-every", "2", "--checkpoint-every",
                 "2", "--out", str(run)]) == 0
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-000000002", "step-000000004"]
    assert main(["train", "--resume", str(run)]) == 0  # a finished run resumes to its end at once
    tried("run_folder_cases")


def test_a_folder_in_use_cannot_be_resumed_or_analysed_elsewhere(tmp_path, capsys):
    from srr.runfolder import RunLock

    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    with RunLock(out):
        assert main(["train", "--resume", str(out)]) == 2
        assert "is in use by another srr process" in capsys.readouterr().err
        assert main(["train", *TINY, "--overwrite", "--out", str(out)]) == 2
        assert "is in use by another srr process" in capsys.readouterr().err
        assert main(["attention", str(out), "--out", str(tmp_path / "att")]) == 2
        assert "is in use by another srr process" in capsys.readouterr().err
    tried("run_folder_cases", 3)


def test_a_run_is_never_written_into_its_data_or_over_its_init(tmp_path, capsys):
    from idx_files import make_mnist_like

    make_mnist_like(tmp_path / "mnist")
    before = sorted(p.name for p in (tmp_path / "mnist").iterdir())
    assert main(["train", "--data", f"idx:{tmp_path / 'mnist'}", "--set", "patch_size=3", "--epochs", "1",
                 "--out", str(tmp_path / "mnist" / "run")]) == 2
    assert "lies in the data idx:" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == before
    start = tmp_path / "start"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(start)]) == 0
    saved = (start / "model.safetensors").read_bytes()
    assert main(["train", *TINY, "--epochs", "1", "--init", str(start), "--overwrite", "--out", str(start)]) == 2
    assert "holds the --init weights" in capsys.readouterr().err
    assert (start / "model.safetensors").read_bytes() == saved
    tried("run_folder_cases", 2)
