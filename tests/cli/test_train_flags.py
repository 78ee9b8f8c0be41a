"""Every flag of ``srr train`` either changes the resolved run or is refused, for every objective: none is accepted and
ignored. The flags are walked from the parser itself, so a flag added later is covered without touching this test."""
from dataclasses import fields

import pytest

from srr.cli import build_parser
from srr.cli.flags import flag_name, setting_classes
from srr.cli.train import plan_from_args
from srr.errors import SrrError
from srr.objectives import get_objective, list_objectives
from srr.settings import field_info
from srr.training import TrainConfig

BASE = {"classification": [], "mse": [], "mcr2": [], "lm": ["--data", "text:corpus.txt"],
        "sparse_coding": [], "simdino": [], "dino": [], "mcr2_views": []}  # no file is opened


def plan(argv: list[str]):
    args = build_parser().parse_args(["train", *argv])
    return plan_from_args(args)


def resolved(p) -> dict:
    return {**p.train.to_dict(), **p.objective_config.to_dict()}


def other_value(cls, name: str):
    """A valid value of the field other than its default."""
    info = field_info(cls, name)
    default, low, high = info["default"], info["low"], info["high"]
    if info["example"] is not None:
        return info["example"]
    if info["kind"] == "bool":
        return not default
    if info["choices"]:
        return next(c for c in info["choices"] if c != default)
    if info["kind"] == "int":
        base = default if default is not None else (low or 0)
        value = base + 1
        return value if high is None or value <= high else base - 1
    if info["kind"] == "float":
        base = default if default is not None else (low or 0.0)
        value = base / 2 if base else (0.5 if high is None or high >= 0.5 else high / 2)
        return value if low is None or value > low or (value == low and not info["low_open"]) else (base + high) / 2
    raise AssertionError(f"no example value for {cls.__name__}.{name}")


def settings_flags() -> list[tuple[str, type]]:
    seen, out = set(), []
    for _, cls in setting_classes():
        for f in fields(cls):
            if f.name not in seen and field_info(cls, f.name)["flag"]:
                seen.add(f.name)
                out.append((f.name, cls))
    return out


def test_the_parser_has_a_flag_for_every_setting_of_every_objective():
    actions = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    names = {name for name, _ in settings_flags()}
    assert names <= actions and len(names) > 40
    assert set(BASE) == set(list_objectives())  # a new objective must be added to BASE, and is then walked


@pytest.mark.parametrize("objective", sorted(BASE))
def test_every_settings_flag_changes_the_resolved_run_or_is_refused(objective):
    base_argv = ["--objective", objective, *BASE[objective]]
    baseline = resolved(plan(base_argv))
    own = {f.name for f in fields(TrainConfig)} | {f.name for f in fields(get_objective(objective).Config)}
    acted, refused = [], []
    for name, cls in settings_flags():
        value = other_value(cls, name)
        flag = flag_name(name)
        argv = [*base_argv, flag] if isinstance(value, bool) and value else \
            [*base_argv, "--no-" + flag[2:]] if isinstance(value, bool) else [*base_argv, flag, str(value)]
        try:
            after = resolved(plan(argv))
        except SrrError as exc:
            assert name not in own, f"{flag} belongs to {objective} but was refused: {exc}"
            assert f"{flag} does not apply to --objective {objective}" in str(exc)
            refused.append(name)
            continue
        assert name in own, f"{flag} was accepted for {objective}, which has no such setting"
        assert after[name] != baseline[name] and after[name] == value, f"{flag} {value} did not change {name}"
        changed = {k for k in after if after[k] != baseline[k]}
        assert changed == {name}, f"{flag} changed {changed}"
        acted.append(name)
    assert set(acted) == own and set(acted).isdisjoint(refused)
    assert refused, "every objective refuses the flags of the others"


@pytest.mark.parametrize("argv,field,value", [
    (["--model", "vit_nano"], "model", "vit_nano"),
    (["--data", "synthetic:k=3"], "data", "synthetic:k=3"),
    (["--set", "dim=32"], "model_args", {"dim": 32}),
    (["--out", "elsewhere"], "out", "elsewhere"),
    (["--overwrite"], "overwrite", True),
    (["--recipe", "mnist_micro", "--data", "idx:somewhere"], "recipe", "mnist_micro"),
    (["--objective", "mcr2"], "objective", "mcr2"),
])
def test_the_other_flags_change_the_plan(argv, field, value):
    assert getattr(plan(argv), field) == value != getattr(plan([]), field)


def test_no_progress_prints_one_line_per_epoch(tmp_path, capsys):
    from srr.cli import main
    from training_helpers import TINY

    assert main(["train", *TINY, "--epochs", "2", "--out", str(tmp_path / "r")]) == 0  # TINY has --no-progress
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in out if ln.startswith("epoch")] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert "settings:" in out[0] and "epochs=2 (flag)" in out[0] and "lr=0.002 (recipe digits_demo)" in out[0]
