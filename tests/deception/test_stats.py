"""Intervals: Wilson, bootstrap of a mean, seed intervals, the vectorised bootstrap of any score."""

import math

import numpy as np
import pytest

from w2s_helpers.deception import scores, stats


def test_bootstrap_interval_contains_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    v = rng.random((4, 400)) < 0.6
    est, lo, hi = stats.bootstrap(scores.ds_flip, *v, n_boot=500, seed=3)
    assert lo <= est <= hi and hi - lo > 0
    assert (est, lo, hi) == stats.bootstrap(scores.ds_flip, *v, n_boot=500, seed=3)
    with pytest.raises(ValueError, match="1-D"):
        stats.bootstrap(scores.ds_flip, *v[:, None])


def test_bootstrap_of_a_constant_is_degenerate_and_all_nan_is_nan():
    ones = np.ones(30, bool)
    assert stats.bootstrap(scores.accuracy_drop, ones, ones) == (0.0, 0.0, 0.0)
    est, lo, hi = stats.bootstrap(scores.ds_flip, ones, ones, ones, ones, n_boot=50)
    assert np.isnan([est, lo, hi]).all()


def test_wilson_ci():
    lo, hi = stats.wilson_ci(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert stats.wilson_ci(0, 10)[0] == 0.0
    with pytest.raises(ValueError):
        stats.wilson_ci(0, 0)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    x = (np.arange(200) % 3 == 0).astype(float)
    a, b = stats.bootstrap_mean_ci(x, seed=1), stats.bootstrap_mean_ci(x, seed=1)
    assert a == b and a[1] <= a[0] <= a[2]
    assert stats.bootstrap_mean_ci(np.ones(5)) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        stats.bootstrap_mean_ci(np.array([]))


def test_mean_ci():
    r = stats.mean_ci([1.0, 2.0, 3.0])
    # sd = 1, n = 3: half-width = 4.303 / sqrt(3)
    assert r["mean"] == 2.0 and r["high"] - 2.0 == pytest.approx(4.303 / math.sqrt(3))
    assert math.isnan(stats.mean_ci([0.5])["low"]) and stats.mean_ci([0.5, float("nan")])["n"] == 1
    assert stats.t_quantile_975(100) == 1.96
