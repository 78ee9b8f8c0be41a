"""Divergence: a non-finite loss stops the run naming the step and keeps the last good checkpoint intact, or the
step is skipped with --skip-nonfinite."""
import pytest
import torch

from srr.data import LabelledData
from srr.errors import NonFiniteError
from srr.models import create_model
from srr.training import TrainConfig, find_latest, load_checkpoint, train

N, BATCH, POISON, SEED = 48, 8, 17, 3


def poisoned() -> LabelledData:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(N + 8, 1, 1, 8, generator=g), torch.arange(N + 8) % 2
    x[POISON, 0, 0, 3] = float("nan")
    return LabelledData("poison", "poison", x[:N], y[:N], x[N:], y[N:], 2, [0.0], [1.0])


def model():
    torch.manual_seed(0)
    return create_model("crate_nano", image_size=[1, 8], patch_size=[1, 4], channels=1, num_classes=2, dim=8,
                        depth=1, heads=2)


def poisoned_step() -> int:
    """The 1-based step of the first epoch whose batch holds the NaN image (the sampler's permutation)."""
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(SEED))
    return int((perm == POISON).nonzero()) // BATCH + 1


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path, one_thread):
    config = TrainConfig(epochs=2, batch_size=BATCH, seed=SEED, checkpoint_every=1, tensorboard=False)
    bad = poisoned_step()
    with pytest.raises(NonFiniteError, match=rf"training loss became nan at step {bad} \(epoch 1, batch {bad}\)"):
        train(model(), poisoned(), config, tmp_path, progress=False)
    latest = find_latest(tmp_path)
    assert bad > 1 and latest is not None
    weights, state, meta = load_checkpoint(latest)
    assert meta["step"] == bad - 1 and latest.name == f"step-{bad - 1:09d}"
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert state["position"]["step"] == bad - 1


def test_skip_nonfinite_skips_one_step_per_epoch(tmp_path, one_thread):
    config = TrainConfig(epochs=3, batch_size=BATCH, seed=SEED, skip_nonfinite=True, tensorboard=False)
    m = model()
    summary = train(m, poisoned(), config, tmp_path, progress=False)
    assert summary["skipped_steps"] == 3 and summary["steps"] == 3 * N // BATCH
    assert all(torch.isfinite(p).all() for p in m.parameters())
    assert torch.isfinite(torch.tensor(summary["test_loss"])) and summary["test_accuracy"] is not None
