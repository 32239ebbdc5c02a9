import numpy as np

from w2s_helpers.mitigations import audit


def test_golden_audit_curve():
    target = np.array([0, 1, 0, 1, 1, 0], bool)
    order = np.array([1, 0, 2, 3, 5, 4])
    assert np.allclose(audit.audit_curve(order, target, [0, 1, 2, 4, 6, 10]), [0, 1 / 3, 1 / 3, 2 / 3, 1, 1])
    assert np.isnan(audit.audit_curve(order, np.zeros(6, bool), [3])).all()


def test_the_order_puts_the_highest_priority_first_with_seeded_ties():
    order = audit.audit_order(np.array([0.1, 0.9, 0.5, 0.9]), seed=0)
    assert set(order[:2]) == {1, 3} and list(order[2:]) == [2, 0]
    assert np.array_equal(order, audit.audit_order(np.array([0.1, 0.9, 0.5, 0.9]), seed=0))


def test_deceptive_errors_are_ds_flips_numerator():
    from w2s_helpers.deception import scores

    rng = np.random.default_rng(0)
    a_w, a_s, a_nc, a_c = (rng.random(400) < p for p in (0.6, 0.8, 0.7, 0.6))
    target = audit.deceptive_errors(a_w, a_s, a_nc, a_c)
    assert np.isclose(target.sum() / (a_s & ~a_w).sum(), scores.ds_flip(a_w, a_s, a_nc, a_c))
    assert np.allclose(audit.disagreement(np.array([0.0, 2.0]), np.array([0.0, -2.0])), [0.0, np.tanh(1.0)])
