"""Recipes and settings, the optimisers and schedule, augmentations, and the demo's command line."""
import math

import pytest
import torch
from torch import nn

from srr.cli import main
from srr.errors import ConfigError
from srr.data.augment import Augmenter, mix_batch, rand_augment, random_flip, random_resized_crop
from srr.objectives import ClassificationConfig
from srr.training import Lion, list_recipes, load_recipe, parameter_groups, plan_training, warmup_cosine
from training_helpers import TINY, steps


def settings(recipe: str, **kw) -> dict:
    """The resolved engine and objective settings of a shipped recipe."""
    plan = plan_training(recipe=recipe, **kw)
    return {**plan.train.to_dict(), **plan.objective_config.to_dict()}


def test_shipped_recipes_load_and_say_what_they_are():
    names = set(list_recipes())
    assert {"digits_demo", "crate_cifar10_scratch", "crate_imagenet", "crate_finetune", "mnist_micro"} <= names
    imagenet = settings("crate_imagenet")
    assert [imagenet[k] for k in ("optimizer", "lr", "weight_decay", "batch_size")] == ["lion", 2.4e-4, 0.5, 2048]
    assert [imagenet[k] for k in ("epochs", "warmup_epochs", "label_smoothing")] == [150, 5.0, 0.1]
    cifar = load_recipe("crate_cifar10_scratch")
    assert cifar.model == "crate_tiny" and cifar.model_args == {"patch_size": 4}
    assert settings("crate_cifar10_scratch")["randaugment"] == 2
    assert settings("crate_cifar10_scratch")["randaugment_magnitude"] == 14
    assert settings("crate_finetune", data="digits")["resize"] == 224
    with pytest.raises(ConfigError, match="recipe mnist_micro names no data: pass --data"):
        plan_training(recipe="mnist_micro")  # no path outside the repository is assumed


def test_recipe_errors_are_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "r.toml"
    bad.write_text('model = "crate_nano"\n[train]\nepoch = 3\n')
    with pytest.raises(ConfigError, match="unknown training setting 'epoch'; did you mean 'epochs'"):
        load_recipe(bad)
    bad.write_text('[train]\nlr = "fast"\n')
    with pytest.raises(ConfigError, match=r"r.toml: lr must be a number, got 'fast'"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="unknown recipe 'digits_dmeo'; did you mean digits_demo"):
        load_recipe("digits_dmeo")
    assert main(["train", "--recipe", str(bad)]) == 2 and "lr must be a number" in capsys.readouterr().err
    bad.write_text('model = ["crate_nano"]\n')
    with pytest.raises(ConfigError, match=r"model must be a string, got \['crate_nano'\]"):
        load_recipe(bad)
    bad.write_text("[train]\ndropout = 0.5\n")  # a model setting in [train]: refused, not ignored
    with pytest.raises(ConfigError, match="unknown training setting 'dropout'"):
        load_recipe(bad)
    bad.write_text("[train]\nsteps = 5\n")  # a setting of another objective
    with pytest.raises(ConfigError, match="--steps does not apply to --objective classification"):
        load_recipe(bad)


def test_command_line_overrides_the_recipe(tmp_path, capsys, one_thread):
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "crate_nano"\n[model_args]\ndim = 12\n[train]\nepochs = 3\nbatch_size = 64\n'
                      'lr = 5e-3\nlog_every = 1\n')
    argv = [a for a in TINY if a not in ("--model", "crate_nano")]
    assert main(["train", *argv, "--recipe", str(recipe), "--epochs", "1", "--workers", "1",
                 "--out", str(tmp_path / "o")]) == 0
    assert len(steps(tmp_path / "o")) == 2  # 128 images / 64, one epoch (the flag beat the recipe's 3)
    assert steps(tmp_path / "o")[0]["lr"] == pytest.approx(5e-3 * 1 / 2)  # warm-up step 1 of 2, recipe lr
    import json
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["model_config"]["args"]["dim"] == 16 and run["objective_config"]["epochs"] == 1  # --set beat [model_args]
    assert run["sources"]["epochs"] == "flag" and run["sources"]["lr"] == f"recipe {recipe.stem}"


def test_lion_matches_its_formula():
    p = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = Lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    m = torch.zeros(3)
    for grad in ([0.3, -0.1, 0.0], [-1.0, 0.2, 0.4]):
        g = torch.tensor(grad)
        expected = p.detach() * (1 - 0.1 * 0.5) - 0.1 * torch.sign(0.9 * m + 0.1 * g)
        m = 0.99 * m + 0.01 * g
        p.grad = g
        opt.step()
        assert torch.allclose(p.detach(), expected)


def test_schedule_per_step_and_per_epoch_and_decay_groups():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    step = warmup_cosine(opt, total_steps=100, warmup_steps=10)
    factors = [step.lr_lambdas[0](s) for s in (0, 9, 10, 55, 100)]
    assert factors == pytest.approx([0.1, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi * 0.5)), 0.0])
    epoch = warmup_cosine(opt, total_steps=100, warmup_steps=20, steps_per_epoch=10)
    assert [epoch.lr_lambdas[0](s) for s in (0, 9, 10, 19, 20)] == pytest.approx([0.5, 0.5, 1.0, 1.0, 1.0])
    model = nn.Sequential(nn.Embedding(5, 4), nn.LayerNorm(4), nn.Linear(4, 4))
    decay, no_decay = parameter_groups(model, 0.1)
    assert [p.shape for p in decay["params"]] == [(4, 4)] and len(no_decay["params"]) == 4


def test_augmentations():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    same = random_resized_crop(x, g, min_scale=1.0, ratio=(1.0, 1.0))
    assert torch.allclose(same, x, atol=1e-5)  # the whole image, resampled onto itself
    flipped = random_flip(x, g)
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(-1)) for f, o in zip(flipped, x))
    assert not torch.equal(random_resized_crop(x, g, 0.2), x)
    mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    out = rand_augment(x.clamp(0, 1), g, 2, 14, mean, std)
    assert out.shape == x.shape and torch.isfinite(out).all() and not torch.equal(out, x.clamp(0, 1))
    target = torch.eye(6)
    mixed, mt = mix_batch(x, target, g, mixup=0.0, cutmix=1.0)
    assert torch.allclose(mt.sum(1), torch.ones(6)) and (mt > 0).sum(1).max() <= 2
    config = ClassificationConfig(mixup=0.4, label_smoothing=0.1)
    _, soft = Augmenter(config, [0.0] * 3, [1.0] * 3, 10)(x, torch.arange(6), g)
    assert soft.shape == (6, 10) and torch.allclose(soft.sum(1), torch.ones(6)) and float(soft.min()) >= 0.01 - 1e-6


def test_resume_needs_a_run_folder(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "holds no run.json" in capsys.readouterr().err


def test_fine_tuning_start_copies_resizes_and_reinitialises(tmp_path):
    from srr.models import create_model, save_pretrained
    from srr.training.transfer import load_initial_weights

    torch.manual_seed(0)
    source = create_model("crate_nano", dim=16, heads=2, depth=2, num_classes=10)  # 8x8 images, 4x4 patch grid
    save_pretrained(source, tmp_path / "pre")
    target = create_model("crate_nano", dim=16, heads=2, depth=2, num_classes=3, image_size=16)  # 8x8 grid
    fresh_head = target.mlp_head[1].weight.clone()
    report = load_initial_weights(target, tmp_path / "pre")
    assert report["resized"] == ["pos_embedding"] and set(report["skipped"]) == {"mlp_head.1.weight", "mlp_head.1.bias"}
    assert torch.equal(target.transformer.layers[1][1].fn.weight, source.transformer.layers[1][1].fn.weight)
    assert report["loaded"] and all(name.startswith(("to_patch", "transformer", "cls_token", "mlp_head.0"))
                                    for name in report["loaded"])
    assert torch.equal(target.mlp_head[1].weight, fresh_head)
    assert target.pos_embedding.shape == (1, 65, 16) and torch.equal(target.pos_embedding[:, 0], source.pos_embedding[:, 0])


def test_tensorboard_events_when_installed(tmp_path, capsys, one_thread):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    argv = [a for a in TINY if a != "--no-tensorboard"]
    assert main(["train", *argv, "--epochs", "1", "--log-every", "1", "--out", str(tmp_path / "tb")]) == 0
    events = list((tmp_path / "tb" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 100
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    acc.Reload()
    assert {"train/loss", "train/lr", "eval/test_accuracy"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("train/loss")) == 1  # 128 training images in one batch of the demo recipe's 128
