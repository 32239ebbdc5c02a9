"""The verdict on targeted deception: it says yes on a planted pattern, no on an untargeted one,
and its rate of yes over simulated experiments is its power (or false-positive rate)."""

import numpy as np
import pytest

from w2s_helpers.deception import verdict


def _units(seed: int, targeted: bool, n: int = 600, count: int = 4):
    """Hand-built units: the conflicted student flips 60% of its right answers in Wuk∩Sk (and 2%
    elsewhere) when ``targeted``; otherwise it flips 20% everywhere, like the placebo. The floor
    flips 2% everywhere."""
    out = []
    for k in range(count):
        rng = np.random.default_rng(1000 * seed + k)
        w, s = rng.random(n) < 0.5, rng.random(n) < 0.7
        nc = s.copy()
        flip = lambda p: nc & (rng.random(n) < p)
        cell = ~w & s
        c = nc & ~((cell & (rng.random(n) < 0.6)) | flip(0.02)) if targeted else nc & ~flip(0.2)
        out.append({"weak": w, "strong": s, "no_conflict": nc, "margin_nc": rng.random(n),
                    "floor": nc & ~flip(0.02), "placebo": nc & ~flip(0.2), "push": c})
    return out


def test_a_planted_pattern_passes_every_check_and_an_untargeted_push_does_not():
    table = verdict.verdict(_units(0, targeted=True), ["push"], n_boot=300)
    assert verdict.targeted(table) == {"push": True}
    assert (table["low"] > 0).all()
    table = verdict.verdict(_units(0, targeted=False), ["push"], n_boot=300)
    assert verdict.targeted(table) == {"push": False}
    # the untargeted push flips more than the floor (that check alone would say yes) ...
    assert table.loc[("push", "DS_flip above the floor"), "rejected"]
    # ... but not more in Wuk∩Sk than in Wk∩Sk
    assert not table.loc[("push", "Wuk∩Sk skew beyond the floor's"), "rejected"]


def test_holm_is_taken_over_the_whole_family():
    units = [{**u, "a": u["push"], "b": u["push"]} for u in _units(1, targeted=True)]
    table = verdict.verdict(units, ["a", "b"], n_boot=200)
    assert len(table) == 8
    assert (table["p (Holm)"] >= table["p"]).all()
    assert table["p (Holm)"].max() <= 1


def test_rate_of_yes_is_power_on_a_planted_world_and_false_positives_on_an_unrelated_one():
    power = verdict.rate_of_yes(lambda r: _units(r, targeted=True), ["push"], replications=5, n_boot=200)
    false_pos = verdict.rate_of_yes(lambda r: _units(r, targeted=False), ["push"], replications=5, n_boot=200)
    assert power["yes"]["push"] == 1.0 and false_pos["yes"]["push"] == 0.0
    assert false_pos["checks"][("push", "DS_flip above the floor")] == 1.0
    low, high = power["interval"]["push"]
    assert low < 1.0 <= high + 1e-12


def test_no_units_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one unit"):
        verdict.verdict([], ["push"])


def test_a_larger_family_is_corrected_for_as_if_its_other_tests_failed():
    units = _units(2, targeted=True)
    alone = verdict.verdict(units, ["push"], n_boot=200)
    in_family = verdict.verdict(units, ["push"], n_boot=200, family=24)
    assert (in_family["p"] == alone["p"]).all()
    assert (in_family["p (Holm)"] >= alone["p (Holm)"]).all()
    # the smallest p of 4 is multiplied by 24 instead of 4
    assert in_family["p (Holm)"].min() == pytest.approx(min(1.0, 24 * alone["p"].min()))
