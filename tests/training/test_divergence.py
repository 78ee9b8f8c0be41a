"""Divergence: a non-finite loss stops the run naming the step and keeps the last good checkpoint intact, or the
step is skipped with --skip-nonfinite."""
import pytest
import torch

from srr.errors import NonFiniteError
from srr.models import create_model
from srr.objectives import Classification, ClassificationConfig
from srr.training import TrainConfig, find_latest, load_checkpoint, train

N, BATCH, POISON, SEED = 48, 8, 17, 3


class Images:
    """Images held as tensors; item ``poison`` turns NaN when it is fetched (the loaders refuse NaN files, so a
    divergence is made inside the run)."""

    def __init__(self, x, y, poison=None):
        self.x, self.y, self.poison = x, y, poison

    def __len__(self):
        return len(self.y)

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices)
        x = self.x[idx].clone()
        x[idx == self.poison] = float("nan")
        return x, self.y[idx]


class Poisoned:
    """The attributes an image objective reads."""

    name = spec = "poison"
    num_classes, mean, std, image_size, channels = 2, [0.0], [1.0], (1, 8), 1

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(N + 8, 1, 1, 8, generator=g), torch.arange(N + 8) % 2
        self.train_set, self.test_set = Images(x[:N], y[:N], POISON), Images(x[N:], y[N:])

    def preprocessing(self):
        return {"mean": self.mean, "std": self.std, "image_size": list(self.image_size), "channels": 1}


def poisoned(epochs: int) -> Classification:
    return Classification(ClassificationConfig(epochs=epochs), Poisoned())


def model():
    torch.manual_seed(0)
    return create_model("crate_nano", image_size=[1, 8], patch_size=[1, 4], channels=1, num_classes=2, dim=8,
                        depth=1, heads=2)


def poisoned_step() -> int:
    """The 1-based step of the first epoch whose batch holds the NaN image (the sampler's permutation)."""
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(SEED))
    return int((perm == POISON).nonzero()) // BATCH + 1


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path, one_thread):
    config = TrainConfig(batch_size=BATCH, seed=SEED, checkpoint_every=1, tensorboard=False)
    bad = poisoned_step()
    with pytest.raises(NonFiniteError, match=rf"training loss became nan at step {bad} \(epoch 1, batch {bad}\)"):
        train(model(), poisoned(2), config, tmp_path, progress=False)
    latest = find_latest(tmp_path)
    assert bad > 1 and latest is not None
    weights, state, meta = load_checkpoint(latest)
    assert meta["step"] == bad - 1 and latest.name == f"step-{bad - 1:09d}"
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert state["position"]["step"] == bad - 1


def test_skip_nonfinite_skips_one_step_per_epoch(tmp_path, one_thread):
    config = TrainConfig(batch_size=BATCH, seed=SEED, skip_nonfinite=True, tensorboard=False)
    m = model()
    summary = train(m, poisoned(3), config, tmp_path, progress=False)
    assert summary["skipped_steps"] == 3 and summary["steps"] == 3 * N // BATCH
    assert all(torch.isfinite(p).all() for p in m.parameters())
    assert torch.isfinite(torch.tensor(summary["test_loss"])) and summary["test_accuracy"] is not None
