"""Data parallelism: 2 gloo processes under torchrun give the 1-process run's losses and weights; accumulation and
bf16 autocast on the CPU."""
import pytest
import torch

from srr.cli import main
from training_helpers import TINY, max_diff, srr_process, steps, weights

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is unavailable")

RUN = [*TINY, "--epochs", "2", "--batch-size", "32", "--log-every", "1", "--lr", "3e-3", "--seed", "5"]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path, capsys, one_thread):
    proc = srr_process("train", *RUN, "--out", str(tmp_path / "two"), "--device", "cpu", torchrun=2)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    assert main(["train", *RUN, "--out", str(tmp_path / "one")]) == 0
    one, two = steps(tmp_path / "one"), steps(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, 9))
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two)) < 1e-5
    assert max_diff(weights(tmp_path / "one"), weights(tmp_path / "two")) < 1e-5
    assert "world_size\": 2" in (tmp_path / "two" / "summary.json").read_text()


def test_accumulation_matches_the_full_batch(tmp_path, capsys, one_thread):
    assert main(["train", *RUN, "--out", str(tmp_path / "a1")]) == 0
    assert main(["train", *RUN, "--accumulate", "4", "--out", str(tmp_path / "a4")]) == 0
    assert max_diff(weights(tmp_path / "a1"), weights(tmp_path / "a4")) < 1e-5
    losses = [(a["loss"], b["loss"]) for a, b in zip(steps(tmp_path / "a1"), steps(tmp_path / "a4"))]
    assert max(abs(a - b) for a, b in losses) < 1e-5


def test_bf16_autocast_and_clipping_on_cpu(tmp_path, capsys, one_thread):
    argv = [*RUN, "--precision", "bf16", "--grad-clip", "0.5", "--optimizer", "lion", "--lr", "3e-4"]
    assert main(["train", *argv, "--out", str(tmp_path / "b")]) == 0
    fp32 = steps(tmp_path / "b")
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in fp32)
    code = main(["train", *RUN, "--precision", "fp16", "--device", "cpu", "--out", str(tmp_path / "c")])
    assert code == 2 and "fp16 needs a CUDA device" in capsys.readouterr().err
