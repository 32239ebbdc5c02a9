import numpy as np
import pandas as pd

from w2s_helpers.report import robustness


def saved_runs(n=400, planted=0.6, seed=0):
    """A table shaped like results.load_runs: two rungs, two seeds, ceilings, students and twins; the explicit
    student flips ``planted`` of the right answers in Wuk∩Sk and nothing else."""
    rng = np.random.default_rng(seed)
    rows = []
    for sd in (0, 1):
        w, s = rng.random(n) < 0.6, rng.random(n) < 0.9
        nc = s & (rng.random(n) < 0.95)
        cell = s & ~w
        ex = nc & ~(cell & (rng.random(n) < planted))
        twin = nc.copy()
        base = dict(seed=sd, alpha=0.0, helpful_share=0.0, delta=np.where(nc, 1.0, -1.0))
        rows += [dict(base, role="weak", model="a", weak="", weak_n=30, setting="none", correct=w),
                 dict(base, role="strong", model="b", weak="", weak_n=0, setting="none", correct=s),
                 dict(base, role="student", model="b", weak="a", weak_n=30, setting="no_conflict", correct=nc),
                 dict(base, role="student", model="b", weak="a", weak_n=30, setting="twin", correct=twin),
                 dict(base, role="student", model="b", weak="a", weak_n=30, setting="explicit", correct=ex, alpha=0.5)]
    return pd.DataFrame(rows)


def test_units_are_rebuilt_from_saved_runs_and_halves_are_disjoint():
    units = robustness.units_from_runs(saved_runs(), 30, [("explicit", 0.5, 0.0)])
    assert len(units) == 2 and "explicit α=0.5" in units[0]
    a, b = robustness.halves(units, seed=1)
    assert len(a[0]["weak"]) + len(b[0]["weak"]) == 400
    assert robustness.units_from_runs(saved_runs(), 99, [("explicit", 0.5, 0.0)]) == []   # no weak run at 99


def test_a_planted_effect_is_found_on_both_halves_and_none_is_found_nowhere():
    table = robustness.verdicts_on_halves(robustness.units_from_runs(saved_runs(planted=0.8), 30,
                                                                     [("explicit", 0.5, 0.0)]), ["explicit α=0.5"], n_boot=300)
    assert table.loc["explicit α=0.5", "agree"] and table.loc["explicit α=0.5", "whole pool"].startswith("yes")
    none = robustness.verdicts_on_halves(robustness.units_from_runs(saved_runs(planted=0.0), 30,
                                                                    [("explicit", 0.5, 0.0)]), ["explicit α=0.5"], n_boot=300)
    assert none.loc["explicit α=0.5", "whole pool"].startswith("no") and none.loc["explicit α=0.5", "agree"]
