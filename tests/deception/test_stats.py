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


def test_holm_golden():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.2]), [0.04, 0.09, 0.09, 0.2])
    np.testing.assert_allclose(stats.holm([0.01, float("nan"), 0.02]), [0.02, float("nan"), 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])            # capped at 1
    assert np.isnan(stats.holm([float("nan")])).all()


def test_p_greater_golden():
    assert stats.p_greater(np.array([-1.0, 0.0, 1.0, 2.0])) == pytest.approx(3 / 5)
    assert stats.p_greater(np.array([1.0, 2.0, float("nan")])) == pytest.approx(1 / 3)   # never 0
    assert np.isnan(stats.p_greater(np.array([float("nan")])))


def test_slope_and_slope_difference_golden():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert stats.slope(x, 2 * x + 1) == pytest.approx(2.0)
    assert np.isnan(stats.slope(np.ones(4), x))
    # the reference's own trend (0.5 per unit) is taken out row by row: 2 - 0.5 = 1.5 in every resample
    est, lo, hi, _ = stats.slope_difference(x, 2 * x + 1, 0.5 * x, clusters=np.array([0, 0, 1, 1]), n_boot=200)
    assert est == pytest.approx(1.5) and lo == pytest.approx(1.5) and hi == pytest.approx(1.5)
    with pytest.raises(ValueError, match="one length"):
        stats.slope_difference(x, x, x[:3], clusters=np.zeros(4))


def test_crossed_bootstrap_with_one_seed_is_the_pair_bootstrap():
    rng = np.random.default_rng(0)
    v = [rng.random(50) < 0.6 for _ in range(4)]
    est, lo, hi, _ = stats.crossed_bootstrap(scores.ds_flip, [tuple(v)], n_boot=300, seed=7)
    assert (est, lo, hi) == stats.bootstrap(scores.ds_flip, *v, n_boot=300, seed=7)


def test_crossed_bootstrap_of_a_constant_is_degenerate_and_shapes_are_checked():
    runs = [(np.ones(20, bool),), (np.ones(20, bool),)]
    assert stats.crossed_bootstrap(lambda a: a.mean(-1), runs, n_boot=50)[:3] == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="same number"):
        stats.crossed_bootstrap(lambda a: a.mean(-1), [(np.ones(20),), (np.ones(10),)])
    with pytest.raises(ValueError, match="at least one"):
        stats.crossed_bootstrap(lambda a: a.mean(-1), [])


def _coverage(n_seeds: int, seed_sd: float, reps: int = 300, n: int = 200, n_boot: int = 400):
    """Share of simulated experiments whose 95% interval covers the true mean accuracy, for the
    crossed bootstrap and for a bootstrap over pairs alone (seed-averaged vectors)."""
    rng = np.random.default_rng(123)
    mu = np.clip(rng.uniform(0.2, 0.8, 400_000) + rng.normal(0, seed_sd, 400_000), 0, 1).mean()
    crossed = pairs_only = 0
    for r in range(reps):
        q = rng.uniform(0.2, 0.8, n)                         # each test pair's difficulty
        shift = rng.normal(0, seed_sd, n_seeds)              # each seed's luck
        right = rng.random((n_seeds, n)) < np.clip(q[None] + shift[:, None], 0, 1)
        _, lo, hi, _ = stats.crossed_bootstrap(lambda a: a.mean(-1), [(row,) for row in right], n_boot=n_boot, seed=r)
        crossed += lo <= mu <= hi
        _, lo, hi = stats.bootstrap(lambda a: a.mean(-1), right.mean(0), n_boot=n_boot, seed=r)
        pairs_only += lo <= mu <= hi
    return crossed / reps, pairs_only / reps


def test_crossed_intervals_cover_the_true_value_and_pairs_alone_do_not():
    # 300 replications: a binomial sd of 1.3 points around 95%. The crossed bootstrap is allowed to
    # be conservative (it counts seed-by-pair noise twice), never to under-cover beyond that sd.
    crossed, pairs_only = _coverage(n_seeds=10, seed_sd=0.08)
    assert crossed >= 0.95 - 3 * 0.0126, crossed
    assert pairs_only < 0.85, pairs_only          # seed variance left out: far too narrow
    crossed, pairs_only = _coverage(n_seeds=10, seed_sd=0.0)
    assert crossed >= 0.95 - 3 * 0.0126, crossed
    assert pairs_only >= 0.95 - 3 * 0.0126, pairs_only   # no seed variance: pairs alone suffice
