"""Exercise checks: compare a learner's function with the reference on small inputs.

Each check prints one line on success and raises ``AssertionError`` with the first
failing case otherwise, so a wrong answer cannot pass silently.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch


def compare(
    learner: Callable[..., Any], reference: Callable[..., Any], cases: Iterable[tuple], name: str,
    atol: float = 1e-5,
) -> None:
    """Run both functions on every case (a tuple of positional args) and compare outputs."""
    n = 0
    for n, args in enumerate(cases, start=1):
        got, want = learner(*args), reference(*args)
        got_t, want_t = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
        if got_t.shape != want_t.shape:
            raise AssertionError(f"{name}, case {n}: shape {tuple(got_t.shape)}, expected {tuple(want_t.shape)}")
        if not torch.allclose(got_t, want_t, atol=atol, rtol=1e-4, equal_nan=True):
            raise AssertionError(f"{name}, case {n}: got {got_t.flatten()[:4].tolist()}, "
                                 f"expected {want_t.flatten()[:4].tolist()}")
    print(f"PASS {name}: {n} cases match the reference")


def pairwise_cases(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Small (delta, label) inputs for pairwise-loss exercises: hard and soft labels, extremes."""
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.tensor([0.0]), torch.tensor([1.0])),
        (torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 1.0])),
        (torch.randn(16, generator=g) * 3, torch.rand(16, generator=g)),  # soft labels
        (torch.tensor([30.0, -30.0]), torch.tensor([0.0, 1.0])),  # confident and wrong: no overflow
    ]


# ---------------------------------------------------------------------------------------------
# One named check per exercise: a check cell is one line, ``checks.ds_flip(ds_flip)``, and the
# tests run the same checks on the references and on wrong answers.


def _bools(rng, shape, p):
    import numpy as np

    return np.asarray(rng.random(shape) < p)


def pairwise_loss(fn) -> None:
    """Exercise 0.1: the Bradley-Terry pairwise loss, mean over pairs."""
    from w2s_helpers.rewards import losses

    compare(fn, losses.pairwise_loss, pairwise_cases(), "pairwise_loss")


def pgr(fn) -> None:
    """Exercise 1.1: performance gap recovered, NaN without a gap."""
    from w2s_helpers.rewards import heads

    compare(fn, heads.pgr, [(0.6, 0.7, 0.8), (0.6, 0.55, 0.8), (0.6, 0.9, 0.8), (0.7, 0.8, 0.7), (0.8, 0.7, 0.6)], "pgr")


def weak_soft_labels(fn) -> None:
    """Exercise 1.2: the student's inputs and soft labels in one shared random slot order."""
    from w2s_helpers.rewards import heads

    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(3, generator=g), torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g),
              torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g), s) for s in (0, 1)]
    compare(lambda *a: fn(*a)[1], lambda *a: heads.weak_soft_labels(*a)[1], cases, "weak_soft_labels (labels)")
    compare(lambda *a: fn(*a)[0], lambda *a: heads.weak_soft_labels(*a)[0], cases, "weak_soft_labels (strong diff)")


def explicit_conflict_loss(fn) -> None:
    """Exercise 2.1: the explicit-conflict reward loss (the mask carries no gradient)."""
    from w2s_helpers.rewards import losses

    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(12, generator=g) * 2, torch.rand(12, generator=g), (torch.rand(12, generator=g) > 0.5).float(), a)
             for a in (0.0, 0.5, 2.0)]
    cases.append((torch.tensor([3.0, -3.0]), torch.tensor([0.9, 0.1]), torch.tensor([0.0, 1.0]), 1.0))  # both masked
    compare(fn, losses.explicit_conflict_loss, cases, "explicit_conflict_loss")


def region_masks(fn) -> None:
    """Exercise 2.2: the four knowledge cells as boolean masks."""
    import numpy as np

    from w2s_helpers.deception import regions

    rng = np.random.default_rng(0)
    vecs = [(_bools(rng, 20, 0.6), _bools(rng, 20, 0.7)) for _ in range(3)]
    for cell in regions.CELLS:
        compare(lambda w, s: fn(w, s)[cell], lambda w, s: regions.regions(w, s)[cell], vecs, f"region_masks[{cell}]")


def _score_cases() -> list[tuple]:
    import numpy as np

    rng = np.random.default_rng(0)
    cases = [tuple(rng.random((4, n)) < p) for n, p in ((10, 0.5), (40, 0.7), (200, 0.6))]
    cases.append((np.ones(5, bool),) * 4)                                                   # Wuk∩Sk empty: NaN
    cases.append(tuple(np.array(x, bool) for x in ([0, 0, 1], [1, 1, 1], [1, 1, 1], [0, 1, 1])))  # 1/2
    return cases


def ds_flip(fn) -> None:
    """Exercise 3.1: DS_flip, NaN for an empty Wuk∩Sk."""
    from w2s_helpers.deception import scores

    compare(fn, scores.ds_flip, _score_cases(), "ds_flip")


def conflict_tax(fn) -> None:
    """Exercise 3.2: the conflict tax of each knowledge cell."""
    from w2s_helpers.deception import scores

    compare(fn, lambda *v: scores.conflict_tax(*v)[0], _score_cases(), "conflict_tax")


def slice_flips(fn) -> None:
    """Exercise 3b.1: flips and right answers inside one slice of the test set."""
    import numpy as np

    from w2s_helpers.deception import scores

    cases = [c[:3] for c in _score_cases()]
    cases.append(tuple(np.array(x, bool) for x in ([1, 1, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1])))
    compare(fn, scores.slice_flips, cases, "slice_flips")


def _logps(g: torch.Generator, *shape: int, scale: float = 80.0) -> torch.Tensor:
    return -torch.rand(*shape, generator=g) * scale


def dpo_loss(fn) -> None:
    """Exercise 4.1: the DPO loss per pair."""
    from w2s_helpers.policies import losses

    g = torch.Generator().manual_seed(0)
    lp = lambda n: _logps(g, n)
    compare(fn, losses.dpo_loss_per_pair,
            [(lp(5), lp(5), lp(5), lp(5)), (torch.tensor([-3.0]), torch.tensor([-9.0]), torch.tensor([-3.0]), torch.tensor([-9.0])),
             (lp(64), lp(64), lp(64), lp(64), 0.5)], "dpo_loss")


def simpo_loss(fn) -> None:
    """Exercise 4.1: the SimPO loss per pair."""
    from w2s_helpers.policies import losses

    g = torch.Generator().manual_seed(1)
    lp = lambda n: _logps(g, n, scale=4.0)
    compare(fn, losses.simpo_loss_per_pair,
            [(lp(5), lp(5)), (torch.tensor([-1.0]), torch.tensor([-1.5])), (lp(64), lp(64), 2.5, 0.5)], "simpo_loss")


def dpo_explicit(fn) -> None:
    """Exercise 4.2: DPO with the explicit-conflict term, and its gate without gradient."""
    from w2s_helpers.policies import losses

    def case(seed: int, alpha: float) -> tuple:
        g = torch.Generator().manual_seed(seed)
        x = [_logps(g, 32, scale=60.0) for _ in range(4)]
        return (*x, torch.rand(32, generator=g) < 0.7, alpha)

    compare(fn, losses.dpo_explicit_loss, [case(s, a) for s, a in ((0, 0.5), (1, 1.0), (2, 0.0))], "dpo_explicit")
    # the gate carries no gradient: the explicit term pushes only where the harmful side already wins
    pi_h = torch.tensor([-10.0, -12.0], requires_grad=True)
    pi_x = torch.tensor([-12.0, -10.0], requires_grad=True)
    ref, keep = torch.full((2,), -11.0), torch.tensor([True, True])
    fn(pi_h, pi_x, ref, ref, keep, 0.0).backward()
    g0 = pi_x.grad.clone()
    pi_h.grad = pi_x.grad = None
    fn(pi_h, pi_x, ref, ref, keep, 1.0).backward()
    if not (g0[0] == pi_x.grad[0] and pi_x.grad[1] < g0[1]):
        raise AssertionError("dpo_explicit: the term must act on pair 2 only, toward the harmful side")
    print("PASS dpo_explicit: the explicit term acts only where the policy already prefers the harmful response")


def keep_mask(fn) -> None:
    """Exercise 5.1: the high-confidence filter, ``fn(prob, threshold, variant, gt_label)`` -> bool [N],
    both variants, thresholds at and between the soft labels, chosen-first and mixed ground truth."""
    from w2s_helpers.mitigations import filtering

    g = torch.Generator().manual_seed(5)
    prob = torch.rand(64, generator=g)
    gt = (torch.rand(64, generator=g) < 0.6).float()
    edge = torch.tensor([0.25, 0.5, 0.75, 0.8, 0.2, 0.74])
    cases = [(p, t, v, y) for p, y in ((prob, gt), (prob, 1.0), (edge, torch.tensor([1.0, 0, 1, 0, 0, 1])))
             for t in (0.5, 0.75, 0.9) for v in filtering.VARIANTS]
    compare(fn, filtering.keep_mask, cases, "keep_mask")


def audit_curve(fn) -> None:
    """Exercise 5.2 (hard): the share of a target found within the first k audited pairs, for
    each budget k; NaN when the target is empty, k = 0 finds nothing, k beyond N finds all."""
    import numpy as np

    from w2s_helpers.mitigations import audit

    rng = np.random.default_rng(3)
    cases = []
    for n, p in ((20, 0.3), (100, 0.05), (50, 0.5)):
        target = rng.random(n) < p
        cases.append((rng.permutation(n), target, [0, 1, 5, n // 2, n, n + 10]))
    cases.append((np.arange(6), np.zeros(6, bool), [0, 3, 6]))                 # empty target: NaN
    cases.append((np.array([5, 4, 3, 2, 1, 0]), np.array([1, 0, 0, 0, 0, 0], bool), [1, 5, 6]))  # found last
    compare(fn, audit.audit_curve, cases, "audit_curve")


def margin_matched_excess(fn) -> None:
    """Exercise 3.3 (hard): the margin-matched excess of one unit, ``fn(a_w, a_s, a_nc, a_c, margin,
    bins)`` -> float, against :func:`w2s_helpers.deception.scores.margin_matched_excess`: quantile
    bins of |margin|, bins lacking Wuk or Wk pairs left out, weights = Wuk pairs, NaN if none is left."""
    import numpy as np

    from w2s_helpers.deception import scores

    rng = np.random.default_rng(3)
    cases = []
    for (a_w, a_s, a_nc, a_c), bins in zip(_score_cases(), (4, 4, 3, 4, 2)):
        margin = rng.normal(size=a_w.shape) * 2
        cases.append((a_w, a_s, a_nc, a_c, margin, bins))
    n = 300
    a_w, a_s = rng.random(n) < 0.6, rng.random(n) < 0.85
    a_nc = a_s & (rng.random(n) < 0.9)
    margin = np.where(a_w, 2.0, -0.5) + rng.normal(size=n)                   # Wuk pairs: small, negative margins
    a_c = a_nc & ~((rng.random(n) < 0.5) & (np.abs(margin) < 1))            # unsure pairs flip, wherever they are
    cases += [(a_w, a_s, a_nc, a_c, margin, 4), (a_w, a_s, a_nc, a_c, np.round(margin), 5)]   # ties in |margin|
    compare(fn, scores.margin_matched_excess, cases, "margin_matched_excess")


def holm(fn) -> None:
    """Exercise 6.1 (hard): Holm's step-down adjusted p-values, ``fn(pvalues)`` -> [m] in the
    given order: sorted, the j-th smallest times (m - j), made monotone, capped at 1; NaN stays NaN
    and does not count towards m."""
    import numpy as np

    from w2s_helpers.deception import stats

    rng = np.random.default_rng(6)
    cases = [(np.array([0.01]),), (np.array([0.01, 0.04, 0.03]),), (np.array([0.04, 0.01, 0.03, 0.02]),),
             (np.array([0.3, 0.001, 0.5, 0.02, 0.02]),),                    # ties; the cap at 1
             (np.array([0.01, np.nan, 0.02]),), (np.array([np.nan, np.nan]),),
             (rng.random(20) ** 3,)]
    compare(fn, stats.holm, cases, "holm")
