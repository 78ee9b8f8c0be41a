"""The sparse_coding objective: its losses by hand, and LISTA trained by the engine beating ISTA at equal depth."""
import math

import pytest
import torch

import srr
from srr.cli import main
from srr.data import sparse_codes
from srr.errors import ConfigError
from srr.objectives import SparseCoding, SparseCodingConfig
from srr.principles import ista
from srr.training import TrainConfig, plan_training, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_losses_are_the_formulas():
    data = sparse_codes(100, 6, 9, 2, 0.1, 0)
    x, z = data.test_set.x[:5], data.test_set.z[:5]
    codes = z + 0.1 * torch.randn(5, 9)
    for target, lam in (("codes", 0.0), ("lasso", 0.3)):
        obj = SparseCoding(SparseCodingConfig(target=target, lasso_lambda=lam), data).to(torch.device("cpu"))
        obj.check_model(srr.create_model("lista_nano", dim=6, atoms=9))
        got = obj._losses(codes, x, z)
        if target == "codes":
            expected = (codes - z).square().sum(1)
        else:
            expected = 0.5 * (x - codes @ data.dictionary.T).square().sum(1) + lam * codes.abs().sum(1)
        torch.testing.assert_close(got, expected)


def test_trained_lista_beats_ista_at_equal_depth_on_held_out_codes():
    data = sparse_codes(3000, 16, 32, 3, 0.01, 0)
    depth, lam = 4, 0.05
    torch.manual_seed(0)
    model = srr.create_model("lista_nano", dim=16, atoms=32, depth=depth, lambd=lam, dictionary_seed=0)
    x, z = data.test_set.x, data.test_set.z

    def nmse(codes):
        return 10 * math.log10(float((codes - z).square().sum() / z.square().sum()))

    with torch.no_grad():
        start = nmse(model(x))
    ista_db = nmse(ista(x.double(), data.dictionary.double(), lam, depth).float())
    assert start == pytest.approx(ista_db, abs=1e-3)  # before training, LISTA is ISTA
    summary = train(model, SparseCoding(SparseCodingConfig(epochs=6), data),
                    TrainConfig(batch_size=128, lr=3e-3, weight_decay=0.0, tensorboard=False), None, progress=False)
    with torch.no_grad():
        trained = nmse(model(x))
    assert summary["test_nmse_db"] == pytest.approx(trained, abs=1e-3)
    assert trained < ista_db - 2.0  # at least 2 dB better than ISTA with as many iterations as LISTA has layers


def test_srr_train_picks_the_objective_from_the_model_or_the_data(tmp_path, capsys):
    assert plan_training(model="lista_nano").objective == "sparse_coding"
    assert plan_training(data="sparse:n=100").objective == "sparse_coding"
    plan = plan_training(objective="sparse_coding")
    assert (plan.model, plan.data) == ("lista_nano", "sparse")
    with pytest.raises(ConfigError, match="crate_nano is an image model, not one for --objective sparse_coding"):
        plan_training(objective="sparse_coding", model="crate_nano")
    with pytest.raises(ConfigError, match="lista_nano is a sparse-coding model"):
        plan_training(objective="classification", model="lista_nano")
    out = tmp_path / "run"
    assert main(["train", "--model", "lista_nano", "--data", "sparse:n=400,d=8,atoms=12,k=2", "--epochs", "1",
                 "--set", "depth=2", "--no-progress", "--no-tensorboard", "--out", str(out)]) == 0
    assert "test NMSE of the codes" in capsys.readouterr().out
    model = srr.from_pretrained(out)
    assert (model.dim, model.atoms, model.depth, model.config.dictionary_seed) == (8, 12, 2, 0)
    assert main(["train", "--objective", "sparse_coding", "--data", "digits", "--out", str(tmp_path / "r2")]) == 2
    assert "gives labelled images, not signals with their sparse codes" in capsys.readouterr().err


def test_a_stopped_lista_run_resumes_to_the_uninterrupted_weights(tmp_path):
    argv = ["train", "--model", "lista_nano", "--data", "sparse:n=500,d=8,atoms=12,k=2", "--set", "depth=3",
            "--epochs", "3", "--batch-size", "64", "--no-progress", "--no-tensorboard"]
    assert main([*argv, "--out", str(tmp_path / "ref")]) == 0
    assert main([*argv, "--out", str(tmp_path / "run"), "--max-steps", "8"]) == 0  # stops mid-epoch 2, checkpointed
    assert main(["train", "--resume", str(tmp_path / "run"), "--max-steps", "0", "--no-progress"]) == 0
    ref, resumed = srr.from_pretrained(tmp_path / "ref"), srr.from_pretrained(tmp_path / "run")
    for (name, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
