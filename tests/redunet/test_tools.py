"""Evaluation tools around ReduNet and MCR² (nearest subspace, k-NN, class cosines), fine-tuning, and the commands
``srr redunet`` and ``srr train --loss mcr2``."""
import json

import pytest
import torch

from srr.analysis import class_cosines, knn, nearest_subspace
from srr.cli import main
from srr.data import mixture_of_subspaces
from srr.errors import ConfigError
from srr.redunet import ReduNet, fine_tune
from srr.redunet.finetune import fine_tune_loss


pytestmark = pytest.mark.usefixtures("one_thread")


def test_nearest_subspace_recovers_the_subspaces():
    mix = mixture_of_subspaces(k=4, d=8, rank=3, n=40, noise=0.0, seed=0)  # 4 random 3-D subspaces of R^8
    g = torch.Generator().manual_seed(1)
    test = torch.cat([torch.randn(10, 3, generator=g) @ u.T for u in mix.bases])  # fresh points on the subspaces
    truth = torch.arange(4).repeat_interleave(10)
    assert torch.equal(nearest_subspace(mix.x, mix.labels, test, n_components=3), truth)
    # one direction per class cannot hold a rank-3 class: some points go to the wrong class
    assert float((nearest_subspace(mix.x, mix.labels, test, 1) == truth).double().mean()) < 0.9


def test_knn_votes_and_ties():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.7, 0.7]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    test = torch.tensor([[1.0, 0.05], [0.05, 1.0], [0.72, 0.69]])
    assert knn(train, labels, test, k=1).tolist() == [0, 1, 2]
    assert knn(train, labels, test, k=3).tolist() == [0, 1, 0]  # third point: neighbours 2, 0, 0
    assert knn(train, labels, test, k=2).tolist() == [0, 1, 0]  # third point: 2 and 0 tie; the smaller label wins
    with pytest.raises(ConfigError, match="k must lie"):
        knn(train, labels, test, k=6)


def test_class_cosines_against_the_full_matrix():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(30, 5, generator=g, dtype=torch.float64)
    y = torch.arange(30) % 3
    u = z / z.norm(dim=1, keepdim=True)
    c = (u @ u.T).abs()
    same = y[:, None] == y[None, :]
    off = ~torch.eye(30, dtype=torch.bool)
    res = class_cosines(z, y)
    assert abs(res["within"] - float(c[same & off].mean())) < 1e-12
    assert abs(res["between"] - float(c[~same].mean())) < 1e-12


@pytest.mark.parametrize("objective", ["ce", "mcr2"])
def test_fine_tuning_lowers_its_objective(objective):
    mix = mixture_of_subspaces(k=3, d=12, rank=2, n=40, noise=0.4, seed=2)
    net = ReduNet(3, 2, 12, lam=5.0)
    net.build(mix.x, mix.labels)
    e0 = net.layers[0].E.detach().clone()
    before = float(fine_tune_loss(net, mix.x, mix.labels, objective).detach())
    fine_tune(net, mix.x, mix.labels, epochs=5, lr=3e-3, batch_size=60, objective=objective)
    after = float(fine_tune_loss(net, mix.x, mix.labels, objective).detach())
    assert after < before - 1e-3
    assert not torch.equal(net.layers[0].E.detach(), e0)
    with pytest.raises(ConfigError, match="'ce' or 'mcr2'"):
        fine_tune_loss(net, mix.x, mix.labels, "mse")


def test_redunet_command_writes_report(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["redunet", "--data", "synthetic:k=3,d=16,n=40,noise=0.2", "--layers", "3", "--out", str(out),
                 "--no-progress", "--components", "2"])
    printed = capsys.readouterr().out
    assert code == 0 and "nearest subspace" in printed
    layers = json.loads((out / "layers.json").read_text())["layers"]
    assert [r["layer"] for r in layers] == [0, 1, 2, 3]
    assert all(b["delta_R"] > a["delta_R"] for a, b in zip(layers, layers[1:]))
    assert all(abs(r["delta_R"] - (r["R"] - r["Rc"])) < 1e-9 for r in layers)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"]["output"]["nearest_subspace"] > 0.9
    assert summary["between_class_cosine"]["output"] < summary["between_class_cosine"]["input"]
    for name in ("rates.png", "similarity.png", "model.safetensors", "config.json"):
        assert (out / name).stat().st_size > 100
    back = ReduNet.load(out)
    assert back.num_classes == 3 and len(back.layers) == 3


def test_redunet_command_errors_in_one_line(tmp_path, capsys):
    assert main(["redunet", "--data", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("srr redunet: error: unknown data source") and "\n" not in err
    assert main(["redunet", "--layers", "0", "--out", str(tmp_path)]) == 2
    assert "--layers must lie in [1, 4096], got 0" in capsys.readouterr().err


def test_train_with_mcr2_loss(tmp_path, capsys):
    out = tmp_path / "m"
    code = main(["train", "--objective", "mcr2", "--model", "crate_nano", "--set", "dim=16", "--set", "depth=1",
                 "--set", "heads=2", "--epochs", "2", "--batch-size", "256", "--no-progress", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "nearest subspace" in printed
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["train_delta_R"] > rows[0]["train_delta_R"]  # the rate reduction of the features grows
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objective"] == "mcr2" and summary["test_accuracy"] == rows[-1]["test_nearest_subspace"] > 0.3
    assert abs(summary["objective_config"]["eps"] - 0.5 ** 0.5) < 1e-12
    assert (out / "model.safetensors").is_file()


def test_fine_tuning_at_the_default_lambda_trains_its_loss_falls_and_its_accuracy_moves():
    """At the unit temperature (not the network's λ = 500, whose softmax saturates: 0.0 on the digits) the
    cross-entropy falls and the training accuracy moves (up, on this seed)."""
    mix = mixture_of_subspaces(k=4, d=16, rank=2, n=60, noise=1.0, seed=2)
    net = ReduNet(4, 3, 16)  # the default λ = 500
    net.build(mix.x, mix.labels)
    before = float(fine_tune_loss(net, mix.x, mix.labels).detach())
    acc_before = float((net.predict(mix.x) == mix.labels).double().mean())
    history = fine_tune(net, mix.x, mix.labels, epochs=30, lr=1e-3, batch_size=60)
    after = float(fine_tune_loss(net, mix.x, mix.labels).detach())
    acc_after = float((net.predict(mix.x) == mix.labels).double().mean())
    assert before > 1.0 and after < 0.9 * before and history[-1] < history[0]
    assert acc_after != acc_before and acc_after > acc_before  # 0.925 -> 0.954 on this seed
