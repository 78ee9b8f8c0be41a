"""The verdict rules on hand-made measurements."""
import math

import pytest

from srr.claims import get_claim, list_claims, spread, verdict
from srr.claims.base import Claim
from srr.errors import ConfigError


def claim(kind="value", value=0.445, tolerance=0.0, signed=False):
    return Claim("x", "t", "s", "p", kind, lambda ctx: None, {}, "", "", {}, value, tolerance, signed)


def test_a_value_is_reproduced_when_it_lies_within_two_standard_deviations_of_the_seeds():
    values = [0.40, 0.42, 0.44]  # mean 0.42, sd 0.02: spread 0.38 … 0.46
    mean, std, low, high = spread(values)
    assert (mean, std) == pytest.approx((0.42, 0.02)) and (low, high) == pytest.approx((0.38, 0.46))
    assert verdict(claim(value=0.445), values) == "reproduced"
    assert verdict(claim(value=0.47), values) == "not reproduced at this scale"
    assert verdict(claim(value=0.47, tolerance=0.05), values) == "reproduced"  # the tolerance widens a tight spread


def test_a_signed_value_is_contradicted_only_when_the_whole_spread_lies_on_the_other_side_of_zero():
    assert verdict(claim(signed=True), [-0.10, -0.12, -0.08]) == "contradicted"
    assert verdict(claim(signed=True), [-0.10, 0.05, -0.08]) == "not reproduced at this scale"  # spread crosses 0
    assert verdict(claim(signed=False), [-0.10, -0.12, -0.08]) == "not reproduced at this scale"
    assert verdict(claim(value=-0.3, signed=True), [0.2, 0.25]) == "contradicted"


def test_one_study_uses_its_own_interval():
    assert verdict(claim(), [0.1], interval=(-0.2, 0.5)) == "reproduced"
    assert verdict(claim(), [0.1], interval=(-0.2, 0.3)) == "not reproduced at this scale"
    assert verdict(claim(signed=True), [-0.3], interval=(-0.5, -0.1)) == "contradicted"
    assert spread([0.1], 0.05, (0.08, 0.11))[2:] == pytest.approx((0.05, 0.15))  # widened to ± tolerance


def test_a_shape_needs_every_seed():
    shape = claim(kind="shape", value=None)
    assert verdict(shape, [True, True, True]) == "reproduced"
    assert verdict(shape, [False, False]) == "contradicted"
    assert verdict(shape, [True, None, True]) == "not reproduced at this scale"
    assert verdict(shape, [True, False]) == "not reproduced at this scale"
    with pytest.raises(ConfigError, match="True, False or None"):
        verdict(shape, [1.0])


def test_no_measurement_and_non_finite_values():
    with pytest.raises(ConfigError, match="no measurement"):
        verdict(claim(), [])
    assert verdict(claim(), [0.445, math.nan]) == "not reproduced at this scale"


def test_every_registered_claim_has_a_protocol_for_each_scale_and_says_what_it_compares():
    names = list_claims()
    assert len(names) >= 12
    for name in names:
        c = get_claim(name)
        assert set(c.protocol) == {"tiny", "cpu", "paper"} and c.cpu and c.paper and c.published
        assert c.kind == "value" or c.rule, f"{name}: a shape claim states what each seed's verdict means"
    with pytest.raises(ConfigError, match="did you mean layer-sparsity"):
        get_claim("layer-sparsty")


def test_a_signed_value_is_reproduced_only_when_its_spread_excludes_zero():
    assert verdict(claim(signed=True), [0.1], interval=(-0.2, 0.5)) == "not reproduced at this scale"
    assert verdict(claim(signed=False), [0.1], interval=(-0.2, 0.5)) == "reproduced"
    assert verdict(claim(signed=True), [0.4], interval=(0.2, 0.6)) == "reproduced"


def test_further_conditions_can_only_take_a_reproduction_away():
    values = [0.40, 0.42, 0.44]
    assert verdict(claim(), values, also={"better than the baselines": True}) == "reproduced"
    assert verdict(claim(), values, also={"better than the baselines": False}) == "not reproduced at this scale"
    assert verdict(claim(signed=True), [-0.1, -0.12], also={"x": False}) == "contradicted"


def test_a_seed_without_a_value_is_no_reproduction():
    assert verdict(claim(), [0.44, None]) == "not reproduced at this scale"
    assert verdict(claim(), [None]) == "not reproduced at this scale"
