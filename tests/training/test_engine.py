"""The one engine: every objective gets accumulation, exact resume and data parallelism; a new objective is one class
and one registration. (Run folders: tests/reliability/test_run_folders.py.)"""
import inspect
import json
import random
import signal
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from srr.cli import main
from srr.objectives import base as objectives_base
from srr.objectives.classification import Classification
from srr.objectives.images import ImageObjectiveConfig
from srr.settings import option
from srr.training import checkpoint as ckpt
from training_helpers import TINY, kill_at_step, max_diff, srr_process, steps, text_file, tiny_lm, weights

pytestmark = pytest.mark.usefixtures("one_thread")


# --- a new objective: one class, one registration ------------------------------------------------------------------

@dataclass
class HingeConfig(ImageObjectiveConfig):
    """A multi-class hinge loss."""

    margin: float = option(1.0, "margin of the hinge", low=0.0, high=100.0)


class Hinge(Classification):
    """Crammer-Singer hinge loss: max(0, margin + max_{c≠y} f_c − f_y)."""

    name = "hinge"
    Config = HingeConfig
    default_recipe = None

    def loss(self, net, inputs):
        logits = net(inputs.x).float()
        true = logits.gather(1, inputs.target[:, None])[:, 0]
        other = logits.scatter(1, inputs.target[:, None], float("-inf")).amax(1)
        return F.relu(self.config.margin + other - true).mean(), {}


@pytest.fixture
def hinge():
    objectives_base.register_objective(Hinge)
    yield Hinge
    objectives_base._OBJECTIVES.pop("hinge")


def test_a_new_objective_is_one_class_and_one_registration(hinge, tmp_path, capsys):
    lines = len(inspect.getsource(HingeConfig).splitlines()) + len(inspect.getsource(Hinge).splitlines())
    assert lines < 25  # the whole objective: its settings and its loss; the engine does the rest
    argv = ["train", "--objective", "hinge", *TINY, "--epochs", "2", "--batch-size", "32", "--margin", "0.5",
            "--accumulate", "2", "--checkpoint-every", "3", "--out", str(tmp_path / "h")]
    assert main(argv) == 0
    run = json.loads((tmp_path / "h" / "run.json").read_text())
    assert run["objective"] == "hinge" and run["objective_config"]["margin"] == 0.5 and run["status"] == "finished"
    assert run["sources"]["margin"] == "flag" and run["train"]["accumulate"] == 2
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "h")] == ["step-000000006", "step-000000008"]
    assert main(["train", *TINY, "--margin", "0.5", "--out", str(tmp_path / "c")]) == 2
    assert "--margin does not apply to --objective classification (it belongs to hinge)" in capsys.readouterr().err


# --- MCR²: a loss of summed statistics stays exact under accumulation -----------------------------------------------

def test_mcr2_with_accumulation_equals_the_full_batch(tmp_path, capsys):
    argv = ["train", "--objective", "mcr2", *TINY, "--epochs", "2", "--batch-size", "64", "--log-every", "1"]
    assert main([*argv, "--out", str(tmp_path / "k1")]) == 0
    assert main([*argv, "--accumulate", "4", "--out", str(tmp_path / "k4")]) == 0
    a, b = steps(tmp_path / "k1"), steps(tmp_path / "k4")
    assert len(a) == len(b) == 4
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-5  # the loss of the whole batch, not a mean
    assert max_diff(weights(tmp_path / "k1"), weights(tmp_path / "k4")) < 1e-5
    rows = [json.loads(ln) for ln in (tmp_path / "k4" / "metrics.jsonl").read_text().splitlines()]
    assert all({"train_delta_R", "train_R", "train_Rc", "test_nearest_subspace", "test_knn"} <= set(r) for r in rows)
    assert all(abs(r["train_delta_R"] - (r["train_R"] - r["train_Rc"])) < 1e-4 for r in rows)


# --- language models: checkpoints, exact resume after SIGKILL -------------------------------------------------------

@pytest.mark.slow
def test_language_model_killed_then_resumed_ends_with_the_uninterrupted_weights(tmp_path, capsys):
    text = text_file(tmp_path)
    argv = [*tiny_lm(text), "--steps", "30", "--eval-every", "10", "--log-every", "1", "--checkpoint-every", "4",
            "--seed", "3"]
    assert main(["train", *argv, "--out", str(tmp_path / "ref")]) == 0
    run = tmp_path / "run"
    kill_at = random.Random(7).randint(5, 25)
    proc = srr_process("train", *argv, "--out", str(run))
    assert kill_at_step(proc, run, kill_at) == -signal.SIGKILL, f"the run ended before step {kill_at}"
    assert main(["train", "--resume", str(run)]) == 0
    ref, resumed = weights(tmp_path / "ref"), weights(run)
    assert all(torch.equal(ref[k], resumed[k]) for k in ref), f"killed at step {steps(run)[-1]['step']}"
    metrics = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in metrics] == [10, 20, 30]
    assert [r["val_loss"] for r in metrics] == [json.loads(ln)["val_loss"] for ln in
                                                (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]


# --- data parallelism for every objective ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("objective", ["lm", "mcr2", "sparse_coding"])
def test_two_processes_equal_one_process(objective, tmp_path, capsys):
    if objective == "lm":
        argv = [*tiny_lm(text_file(tmp_path)), "--steps", "6", "--eval-every", "3", "--log-every", "1"]
    elif objective == "sparse_coding":
        argv = ["--model", "lista_nano", "--data", "sparse:n=640,d=8,atoms=12,k=2", "--set", "depth=3", "--epochs", "2",
                "--batch-size", "64", "--log-every", "1", "--no-progress", "--no-tensorboard"]
    else:
        argv = ["--objective", "mcr2", *TINY, "--epochs", "2", "--batch-size", "64", "--log-every", "1"]
    proc = srr_process("train", *argv, "--out", str(tmp_path / "two"), "--device", "cpu", torchrun=2)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    assert main(["train", *argv, "--out", str(tmp_path / "one")]) == 0
    one, two = steps(tmp_path / "one"), steps(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] and len(one) >= 4
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two)) < 1e-5
    assert max_diff(weights(tmp_path / "one"), weights(tmp_path / "two")) < 1e-5
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["world_size"] == 2








def test_resume_refuses_settings_it_would_ignore_and_takes_the_free_ones(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--seed", "4", "--out", str(out)]) == 0
    for flag, value in (("--seed", "99"), ("--lr", "0.5"), ("--batch-size", "7"), ("--optimizer", "sgd"),
                        ("--label-smoothing", "0.2"), ("--init", str(out))):
        assert main(["train", "--resume", str(out), flag, value]) == 2
        assert f"{flag} cannot change a resumed run" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--seed", "4", "--epochs", "2"]) == 0  # the same seed, more epochs
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2


# --- stopping at a training loss (the paper's rule of the complexity study) -----------------------------------------

def test_stop_loss_ends_the_run_after_the_first_round_at_or_below_it_and_a_resume_stays_stopped(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["train", *TINY, "--epochs", "30", "--batch-size", "32", "--lr", "0.01", "--stop-loss", "1.5",
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in rows]
    assert len(rows) < 30 and losses[-1] <= 1.5 and all(v > 1.5 for v in losses[:-1])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_at_loss"] is True and summary["epochs"] == 30
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0  # stays stopped: no new epoch
    assert len((out / "metrics.jsonl").read_text().splitlines()) == len(rows)


# --- the SRR regulariser of the classification objective -----------------------------------------------------------

def test_srr_regulariser_moves_only_its_layer_and_refuses_a_layer_out_of_range(tmp_path, capsys):
    import srr
    from srr.analysis.complexity import srr_penalty
    from srr.data import load_data
    from srr.objectives.classification import ClassificationConfig

    data = load_data("digits")
    model = srr.create_model("crate_nano", dim=16, depth=3, heads=2)
    x = data.x_train[:8]
    plain = Classification(ClassificationConfig(), data)
    reg = Classification(ClassificationConfig(srr_reg=0.5, srr_layer=1), data)
    batch = type("B", (), {"x": x, "target": data.y_train[:8]})()
    grads = []
    for objective in (plain, reg):
        model.zero_grad()
        objective.loss(model, batch)[0].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    moved = {n for n in grads[0] if not torch.allclose(grads[0][n], grads[1][n])}
    assert moved and all(n.startswith("transformer.layers.1.") for n in moved)
    model.zero_grad()
    term, _ = srr_penalty(model, x, 1)
    (0.5 * term).backward()  # the difference of the gradients is exactly c · ∇(R^c − R) of that layer
    for n in moved:
        torch.testing.assert_close(grads[1][n] - grads[0][n], model.get_parameter(n).grad, atol=1e-5, rtol=1e-4)
    assert main(["train", *TINY, "--epochs", "1", "--srr-reg", "0.1", "--srr-layer", "2",
                 "--out", str(tmp_path / "r")]) == 2
    assert "--srr-layer 2 is out of range for a model of 2 layers (-2 … 1)" in capsys.readouterr().err
