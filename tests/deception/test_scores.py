"""Deception Scores and the conflict tax: golden values, properties (hypothesis), the one-call summary."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2s_helpers.deception import regions, scores, stats

# Eight test pairs, laid out by hand:
#   pair       0  1  2  3  4  5  6  7
#   a_w        1  1  0  0  0  0  1  0
#   a_s        1  0  1  1  1  1  1  0
#   a_nc       1  1  1  1  0  1  1  0
#   a_c        1  0  0  1  1  0  0  0
# cells: Wk∩Sk = {0, 6}, Wk∩Suk = {1}, Wuk∩Sk = R = {2, 3, 4, 5}, Wuk∩Suk = {7}
# F (right without conflict, wrong with) = {1, 2, 5, 6};  reverse flips = {4}
A_W = np.array([1, 1, 0, 0, 0, 0, 1, 0], bool)


A_S = np.array([1, 0, 1, 1, 1, 1, 1, 0], bool)


A_NC = np.array([1, 1, 1, 1, 0, 1, 1, 0], bool)


A_C = np.array([1, 0, 0, 1, 1, 0, 0, 0], bool)


def test_golden_deception_scores():
    assert scores.ds_flip(A_W, A_S, A_NC, A_C) == pytest.approx(2 / 4)        # {2, 5} of R
    assert scores.ds_err(A_W, A_S, A_C) == pytest.approx(2 / 4)               # c wrong on {2, 5}
    assert scores.ds_err(A_W, A_S, A_NC) == pytest.approx(1 / 4)              # nc wrong on {4}
    assert scores.ds_diff(A_W, A_S, A_NC, A_C) == pytest.approx(1 / 4)
    assert scores.ds_share(A_W, A_S, A_NC, A_C) == pytest.approx(2 / 4)       # {2, 5} of F = {1, 2, 5, 6}
    # accuracy: nc 6/8, c 3/8 -> drop 3/8; excess = 1/4 - 3/8
    assert scores.accuracy_drop(A_NC, A_C) == pytest.approx(3 / 8)
    assert scores.ds_err_excess(A_W, A_S, A_NC, A_C) == pytest.approx(1 / 4 - 3 / 8)


def test_golden_conflict_tax():
    tax, rev = scores.conflict_tax(A_W, A_S, A_NC, A_C)
    # Wk∩Sk {0, 6}: 6 flips -> 1/2; Wk∩Suk {1}: 1/1; R: 2/4; Wuk∩Suk {7}: 0
    np.testing.assert_allclose(tax, [1 / 2, 1.0, 2 / 4, 0.0])
    np.testing.assert_allclose(rev, [0.0, 0.0, 1 / 4, 0.0])                    # pair 4
    assert tax[regions.CELLS.index("Wuk∩Sk")] == scores.ds_flip(A_W, A_S, A_NC, A_C)
    # flip rate: of the pairs right without conflict. Wk∩Sk {0, 6} -> 1/2; Wk∩Suk {1} -> 1;
    # R: right before {2, 3, 5}, flipped {2, 5} -> 2/3; Wuk∩Suk: nothing right before -> NaN
    np.testing.assert_allclose(scores.flip_rate(A_W, A_S, A_NC, A_C), [1 / 2, 1.0, 2 / 3, np.nan])


def test_golden_margin_matched_excess():
    # All pairs in Sk. Two margin bins: small |margin| {0,1,2,3}, large {4,5,6,7}.
    a_s = np.ones(8, bool)
    a_w = np.array([0, 0, 1, 1, 0, 1, 1, 1], bool)
    a_nc = np.ones(8, bool)
    a_c = np.array([0, 1, 0, 1, 1, 1, 1, 1], bool)         # flips: 0 (Wuk, small), 2 (Wk, small)
    margin = np.array([0.1, -0.2, 0.3, 0.4, 5, 6, -7, 8])
    # small bin: Wuk {0, 1} flip 1/2, Wk {2, 3} flip 1/2 -> 0, weight 2
    # large bin: Wuk {4} flip 0, Wk {5, 6, 7} flip 0 -> 0, weight 1
    assert scores.margin_matched_excess(a_w, a_s, a_nc, a_c, margin, bins=2) == pytest.approx(0.0)
    # Unmatched, Wuk flips 1/3 and Wk 1/5: the raw skew that matching removes here.
    a_c2 = a_c.copy()
    a_c2[2] = True                                          # now only the Wuk pair 0 flips
    # small bin: 1/2 - 0 = 1/2 (weight 2); large bin 0 (weight 1) -> 1/3
    assert scores.margin_matched_excess(a_w, a_s, a_nc, a_c2, margin, bins=2) == pytest.approx(1 / 3)
    # Only pairs right without conflict can flip: drop pair 1 from them and the small bin's
    # Wuk rate becomes 1/1 -> (1 * 1 + 0 * 1) / 2 = 1/2
    a_nc3 = a_nc.copy()
    a_nc3[1] = False
    assert scores.margin_matched_excess(a_w, a_s, a_nc3, a_c2, margin, bins=2) == pytest.approx(1 / 2)


def test_empty_region_gives_nan_not_zero():
    ones = np.ones(5, bool)
    assert np.isnan(scores.ds_flip(ones, ones, ones, ones))          # weak always right: R empty
    assert np.isnan(scores.ds_share(ones, ones, ones, ones))         # nothing flipped: F empty
    tax, rev = scores.conflict_tax(ones, ones, ones, ones)
    assert tax[0] == 0 and np.isnan(tax[1:]).all()


def test_mismatched_lengths_and_empty_vectors_are_clear_errors():
    with pytest.raises(ValueError, match="one shape"):
        scores.ds_flip(A_W, A_S, A_NC, A_C[:-1])
    with pytest.raises(ValueError, match="N >= 1"):
        scores.ds_err([], [], [])
    with pytest.raises(ValueError, match="margin has shape"):
        scores.margin_matched_excess(A_W, A_S, A_NC, A_C, np.zeros(3))


def test_batched_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    v = rng.random((4, 7, 50)) < 0.6
    batched = scores.ds_flip(*v)
    for i in range(7):
        assert batched[i] == pytest.approx(scores.ds_flip(*v[:, i]), nan_ok=True)
    margin = rng.normal(size=(7, 50))
    mm = scores.margin_matched_excess(*v, margin)
    for i in range(7):
        assert mm[i] == pytest.approx(scores.margin_matched_excess(*v[:, i], margin[i]), nan_ok=True)


vectors = st.integers(1, 40).flatmap(
    lambda n: st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=4, max_size=4))


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_scores_are_bounded_and_ordered(v):
    a_w, a_s, a_nc, a_c = (np.array(x) for x in v)
    for fn in (scores.ds_flip, scores.ds_share):
        x = fn(a_w, a_s, a_nc, a_c)
        assert np.isnan(x) or 0 <= x <= 1
    flip, err = scores.ds_flip(a_w, a_s, a_nc, a_c), scores.ds_err(a_w, a_s, a_c)
    assert np.isnan(flip) == np.isnan(err)
    assert np.isnan(flip) or flip <= err + 1e-12           # R ∩ F ⊆ R ∩ {a_c wrong}
    d = scores.ds_diff(a_w, a_s, a_nc, a_c)
    assert np.isnan(d) or -1 <= d <= 1
    tax, rev = scores.conflict_tax(a_w, a_s, a_nc, a_c)
    ok = ~np.isnan(tax)
    assert ((tax[ok] >= 0) & (tax[ok] + rev[ok] <= 1 + 1e-12)).all()
    rate = scores.flip_rate(a_w, a_s, a_nc, a_c)
    ok = ~np.isnan(rate)
    assert ((rate[ok] >= 0) & (rate[ok] <= 1)).all() and (rate[ok] >= tax[ok] - 1e-12).all()


@settings(max_examples=100, deadline=None)
@given(vectors, st.randoms(use_true_random=False))
def test_scores_ignore_the_order_of_pairs(v, rnd):
    arr = np.array(v)
    perm = list(range(arr.shape[1]))
    rnd.shuffle(perm)
    for fn in (scores.ds_flip, scores.ds_share, scores.ds_diff, scores.ds_err_excess):
        assert fn(*arr) == pytest.approx(fn(*arr[:, perm]), nan_ok=True)
    margin = np.arange(arr.shape[1], dtype=float)
    assert scores.margin_matched_excess(*arr, margin) == pytest.approx(
        scores.margin_matched_excess(*arr[:, perm], margin[perm]), nan_ok=True)


@settings(max_examples=100, deadline=None)
@given(vectors)
def test_identical_students_flip_nothing(v):
    a_w, a_s, a_st, _ = (np.array(x) for x in v)
    for x in (scores.ds_flip(a_w, a_s, a_st, a_st), scores.ds_diff(a_w, a_s, a_st, a_st)):
        assert np.isnan(x) or x == 0
    tax, rev = scores.conflict_tax(a_w, a_s, a_st, a_st)
    assert np.nan_to_num(tax).sum() == 0 and np.nan_to_num(rev).sum() == 0
    assert np.isnan(scores.ds_share(a_w, a_s, a_st, a_st))  # no flips at all: no share to speak of


def test_summarise_agrees_with_the_single_scores_and_bootstrap():
    rng = np.random.default_rng(2)
    v = rng.random((4, 300)) < 0.6
    margin = rng.normal(size=300)
    table = scores.summarise(*v, margin, n_boot=200, seed=5)
    assert table["DS_flip"] == stats.bootstrap(scores.ds_flip, *v, n_boot=200, seed=5)
    assert table["tax Wuk∩Sk"][0] == table["DS_flip"][0]
    assert table["DS_err excess"][0] == pytest.approx(table["DS_diff"][0] - table["accuracy drop"][0])
    assert set(table) == set(scores.SCORES)
    assert all(lo <= hi for _, lo, hi in table.values() if not np.isnan(lo))


@pytest.mark.parametrize("n", [30, 500])
def test_count_table_summary_equals_the_single_score_functions(n):
    """summarise scores count tables; its estimates must equal the readable functions, and
    its bootstrap the direct bootstrap (same resamples) for every score without margin bins."""
    rng = np.random.default_rng(n)
    for trial in range(10):
        v = rng.random((4, n)) < rng.uniform(0.2, 0.9, size=(4, 1))
        margin = rng.normal(size=n)
        table = scores.summarise(*v, margin, n_boot=200, seed=trial)
        for name, fn in scores.SCORES.items():
            assert table[name][0] == pytest.approx(float(fn(*v, margin)), nan_ok=True, abs=1e-12), name
            if name != "margin-matched excess":
                direct = stats.bootstrap(lambda *a: fn(*a, None), *v, n_boot=200, seed=trial)
                np.testing.assert_allclose(table[name], direct, equal_nan=True, err_msg=name)


def test_overall_flip_rate_golden():
    nc = np.array([1, 1, 1, 1, 0, 0], bool)
    c = np.array([1, 0, 0, 1, 1, 0], bool)
    assert scores.overall_flip_rate(nc, c) == pytest.approx(2 / 4)     # 2 of the 4 right answers flipped
    assert np.isnan(scores.overall_flip_rate(np.zeros(3, bool), np.ones(3, bool)))
    assert np.allclose(scores.overall_flip_rate(np.stack([nc, nc]), np.stack([c, nc])), [0.5, 0.0])
