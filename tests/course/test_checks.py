"""Exercise checks: the references pass, wrong answers are rejected."""


import numpy as np
import pytest
import torch

from w2s_helpers.course import checks
from w2s_helpers.deception import regions, scores
from w2s_helpers.rewards import heads, losses


def test_chapter3_exercise_checks_reject_wrong_answers():
    def zero_when_empty(a_w, a_s, a_nc, a_c):
        x = scores.ds_flip(a_w, a_s, a_nc, a_c)
        return 0.0 if np.isnan(x) else x

    wrong_ds = [zero_when_empty,
                lambda w, s, nc, c: scores.ds_err(w, s, c),                     # forgets a_nc: all errors
                lambda w, s, nc, c: scores.ds_share(w, s, nc, c)]               # divides by |F|
    for wrong in wrong_ds:
        with pytest.raises(AssertionError):
            checks.ds_flip(wrong)
    checks.ds_flip(scores.ds_flip)

    def conditional_rate(a_w, a_s, a_nc, a_c):  # flips / right-before, not / cell size
        a_w, a_s, a_nc, a_c = (np.asarray(v, bool) for v in (a_w, a_s, a_nc, a_c))
        cells = regions.cell_masks(a_w, a_s)
        return np.array([(m & a_nc & ~a_c).sum() / (m & a_nc).sum() if (m & a_nc).any() else np.nan for m in cells])

    with pytest.raises(AssertionError):
        checks.conflict_tax(conditional_rate)


def test_check_passes_reference_and_fails_wrong_answers(capsys):
    checks.compare(losses.pairwise_loss, losses.pairwise_loss, checks.pairwise_cases(), "ref")
    assert "PASS ref" in capsys.readouterr().out
    flipped = lambda d, y: losses.pairwise_loss(-d, y)  # sign error
    with pytest.raises(AssertionError, match="case"):
        checks.compare(flipped, losses.pairwise_loss, checks.pairwise_cases(), "flipped")
    naive = lambda d, y: torch.nn.functional.binary_cross_entropy(torch.sigmoid(d), y)  # overflows to inf/clamps
    with pytest.raises(AssertionError):
        checks.compare(naive, losses.pairwise_loss, checks.pairwise_cases(), "naive")
    summed = lambda d, y: losses.pairwise_loss(d, y) * len(d)  # sum, not mean
    with pytest.raises(AssertionError):
        checks.compare(summed, losses.pairwise_loss, checks.pairwise_cases(), "summed")


def test_exercise_checks_reject_wrong_answers():
    """The checks the chapter 1-2 exercises call must fail on plausible mistakes."""
    with pytest.raises(AssertionError):  # forgets the no-gap case
        checks.pgr(lambda w, s, st: (s - w) / (st - w + 1e-12))
    with pytest.raises(AssertionError):  # wrong denominator
        checks.pgr(lambda w, s, st: (s - w) / st)

    unmasked = lambda d, y, gt, a: (losses.pairwise_bce_per_pair(d, y) + a * losses.pairwise_bce_per_pair(d, 1 - gt)).mean()
    wrong_target = lambda d, y, gt, a: losses.explicit_conflict_loss(d, y, 1 - gt, a)
    for wrong in (unmasked, wrong_target):
        with pytest.raises(AssertionError):
            checks.explicit_conflict_loss(wrong)

    with pytest.raises(AssertionError):  # weak and strong mixed up
        checks.region_masks(lambda w_, s_: regions.regions(s_, w_))


def _named_checks():
    from w2s_helpers.mitigations import audit, filtering
    from w2s_helpers.policies import losses as po_losses

    zeros_like_first = lambda *a, **k: torch.zeros_like(torch.as_tensor(a[0], dtype=torch.float32))
    return {
        "pairwise_loss": (losses.pairwise_loss, lambda d, y: losses.pairwise_loss(d, 1 - y)),
        "keep_mask": (filtering.keep_mask,                                                      # the oracle ignores
                      lambda p, t, v, y=None: filtering.keep_mask(p, t, "confidence")),        # the ground truth
        "audit_curve": (audit.audit_curve,                                                      # counts pairs, not
                        lambda o, t, b: np.array([min(k, len(o)) / len(o) for k in b], float)),  # the target's
        "slice_flips": (scores.slice_flips, lambda nc, c, m: scores.slice_flips(nc, c, np.ones_like(m))),  # slice ignored
        "pgr": (heads.pgr, lambda w, s, st: (s - w) / (st - w + 1e-9)),                     # no NaN without a gap
        "weak_soft_labels": (heads.weak_soft_labels,
                             lambda *a: (heads.weak_soft_labels(*a)[0], 1 - heads.weak_soft_labels(*a)[1])),
        "explicit_conflict_loss": (losses.explicit_conflict_loss, lambda d, w, y, a: losses.pairwise_loss(d, w)),
        "region_masks": (regions.regions, lambda w, s: {**regions.regions(w, s), "Wuk∩Sk": ~w & ~s}),
        "ds_flip": (scores.ds_flip, lambda w, s, nc, c: scores.ds_err(w, s, c)),
        "conflict_tax": (lambda *v: scores.conflict_tax(*v)[0], lambda *v: scores.flip_rate(*v)),
        "dpo_loss": (po_losses.dpo_loss_per_pair, lambda pc, pr, rc, rr, beta=0.1: po_losses.dpo_loss_per_pair(pc, pr, rc, rr, 1.0)),
        "simpo_loss": (po_losses.simpo_loss_per_pair, lambda ac, ar, beta=2.0, gamma=1.0: zeros_like_first(ac)),
        "dpo_explicit": (po_losses.dpo_explicit_loss,
                         lambda ph, px, rh, rx, wl, a, beta=0.1: po_losses.dpo_explicit_loss(ph, px, rh, rx, wl, 0.0, beta)),
    }


@pytest.mark.parametrize("name", list(_named_checks()))
def test_each_named_check_passes_the_reference_and_rejects_a_wrong_answer(name, capsys):
    reference, wrong = _named_checks()[name]
    getattr(checks, name)(reference)
    assert "PASS" in capsys.readouterr().out
    with pytest.raises(AssertionError):
        getattr(checks, name)(wrong)



def test_the_filter_check_rejects_plausible_wrong_answers():
    from w2s_helpers.mitigations import filtering

    strict = lambda p, t, v, y=None: filtering.keep_mask(p, min(1.0, t + 1e-6), v, y)          # > instead of >=
    no_truth = lambda p, t, v, y=None: (p >= t) if v == "oracle" else filtering.keep_mask(p, t, v)  # chosen-first only
    for wrong in (strict, no_truth):
        with pytest.raises(AssertionError):
            checks.keep_mask(wrong)


def test_the_audit_check_rejects_plausible_wrong_answers():
    from w2s_helpers.mitigations import audit

    off_by_one = lambda o, t, b: audit.audit_curve(o, t, [k + 1 for k in b])
    zero_not_nan = lambda o, t, b: np.nan_to_num(audit.audit_curve(o, t, b))
    for wrong in (off_by_one, zero_not_nan):
        with pytest.raises(AssertionError):
            checks.audit_curve(wrong)


def test_the_hard_exercise_checks_reject_plausible_wrong_answers():
    def unweighted(a_w, a_s, a_nc, a_c, margin, bins=4):         # averages the bins' differences equally
        a_w, a_s, a_nc, a_c = (np.asarray(v, bool) for v in (a_w, a_s, a_nc, a_c))
        m = np.abs(np.asarray(margin, float))
        which = np.searchsorted(np.quantile(m, np.linspace(0, 1, bins + 1)[1:-1]), m)
        diffs = []
        for b in range(bins):
            uk, k = [(which == b) & a_s & a_nc & (a_w == w) for w in (False, True)]
            if uk.any() and k.any():
                diffs.append((a_nc & ~a_c)[uk].mean() - (a_nc & ~a_c)[k].mean())
        return float(np.mean(diffs)) if diffs else float("nan")

    def signed(a_w, a_s, a_nc, a_c, margin, bins=4):              # bins the signed margin, not |margin|
        return scores.margin_matched_excess(a_w, a_s, a_nc, a_c, margin - np.min(margin), bins)   # all >= 0

    for wrong in (unweighted, signed):
        with pytest.raises(AssertionError):
            checks.margin_matched_excess(wrong)
    checks.margin_matched_excess(scores.margin_matched_excess)

    from w2s_helpers.deception import stats

    def bonferroni(p):
        p = np.asarray(p, float)
        return np.minimum(p * np.isfinite(p).sum(), 1.0)

    def not_monotone(p):
        p = np.asarray(p, float)
        out, ok = np.full(p.shape, np.nan), ~np.isnan(p)
        order = np.argsort(p[ok])
        vals = np.empty(ok.sum())
        vals[order] = np.minimum((ok.sum() - np.arange(ok.sum())) * p[ok][order], 1.0)
        out[ok] = vals
        return out

    counts_nan = lambda p: stats.holm(np.nan_to_num(np.asarray(p, float), nan=1.0))
    for wrong in (bonferroni, not_monotone, counts_nan):
        with pytest.raises(AssertionError):
            checks.holm(wrong)
    checks.holm(stats.holm)
