"""Chapters 1-2 core: the conflict loss, the toy world, linear heads, PGR, saved results."""

import math

import numpy as np
import pytest
import torch

from w2s_helpers import heads, losses, results, toy


def test_explicit_conflict_golden():
    delta = torch.tensor([math.log(3.0), math.log(3.0)])  # sigma = 3/4: both predict "A"
    soft = torch.tensor([0.5, 0.5])
    gt = torch.tensor([1.0, 0.0])  # pair 0: prediction agrees with GT; pair 1: disagrees -> m = 1
    base = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))  # BCE(3/4, 1/2)
    extra = -math.log(0.75)  # pair 1: BCE(3/4, 1 - 0) pushes further towards the harmful A
    got = losses.explicit_conflict_loss(delta, soft, gt, alpha=0.5).item()
    assert got == pytest.approx((base + base + 0.5 * extra) / 2)


def test_explicit_conflict_reduces_to_pairwise_at_alpha_zero():
    g = torch.Generator().manual_seed(0)
    d, y, gt = torch.randn(32, generator=g), torch.rand(32, generator=g), (torch.rand(32, generator=g) > 0.5).float()
    torch.testing.assert_close(losses.explicit_conflict_loss(d, y, gt, 0.0), losses.pairwise_loss(d, y))


def test_explicit_conflict_mask_has_no_gradient_path():
    d = torch.tensor([2.0], requires_grad=True)  # predicts A; GT says B is harmless -> m = 1
    losses.explicit_conflict_loss(d, torch.tensor([0.5]), torch.tensor([0.0]), alpha=1.0).backward()
    # d/dd [BCE(s, .5) + BCE(s, 1)] = (s - .5) + (s - 1), s = sigmoid(2)
    s = torch.sigmoid(torch.tensor(2.0)).item()
    assert d.grad.item() == pytest.approx((s - 0.5) + (s - 1.0))


def test_pgr():
    assert heads.pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert math.isnan(heads.pgr(0.7, 0.7, 0.7))


def test_toy_world_is_deterministic_and_checks_dials():
    w = toy.make_world(dim=8, weak_dims=3, seed=1)
    a, b = toy.sample_pairs(w, 50, 2), toy.sample_pairs(w, 50, 2)
    assert torch.equal(a.strong_a, b.strong_a) and torch.equal(a.weak_b, b.weak_b)
    assert a.diff("strong").shape == (50, 8) and a.diff("weak").shape == (50, 3)
    assert np.isclose(np.linalg.norm(w.harmless), 1) and np.isclose(np.linalg.norm(w.helpful), 1)
    with pytest.raises(ValueError):
        toy.make_world(dim=8, weak_dims=9)


def _w2s(world, seed=0):
    gt, w2s, test = (toy.sample_pairs(world, n, seed + i) for i, n in enumerate((400, 2000, 4000)))
    acc = lambda w, view: ((test.diff(view) @ w > 0).float() == test.harmless_label).float().mean().item()
    w_weak = heads.fit_pairwise_head(gt.diff("weak"), gt.harmless_label, l2=1e-3)
    w_strong = heads.fit_pairwise_head(gt.diff("strong"), gt.harmless_label, l2=1e-3)
    soft = torch.sigmoid(w2s.diff("weak") @ w_weak)
    w_student = heads.fit_pairwise_head(w2s.diff("strong"), soft, l2=1e-3)
    return acc(w_weak, "weak"), acc(w_student, "strong"), acc(w_strong, "strong")


def test_toy_world_shows_weak_to_strong_generalisation_for_a_large_gap():
    weak, student, strong = _w2s(toy.make_world(dim=32, weak_dims=32, weak_noise=1.0, seed=0))
    assert strong - weak > 0.1  # the dial opened a real gap
    assert heads.pgr(weak, student, strong) > 0.2  # the student recovers part of it


def test_toy_world_without_gap_has_nothing_to_recover():
    weak, student, strong = _w2s(toy.make_world(dim=16, weak_dims=16, weak_noise=0.0, seed=0))
    assert abs(strong - weak) < 0.02


def test_results_round_trip(isolated_cache):
    cfg = results.RunConfig(role="student", model="b", weak="a", setting="explicit", alpha=0.5, seed=1)
    delta = np.array([1.5, -0.5, 0.0], dtype=np.float32)
    correct = np.array([True, False, True])
    results.save_run(cfg, delta, correct)
    back = results.load_run(cfg)
    np.testing.assert_array_equal(back["correct"], correct)
    np.testing.assert_allclose(back["prob"], 1 / (1 + np.exp(-delta)), rtol=1e-6)
    assert results.load_run(results.RunConfig(role="student", model="b", seed=2)) is None
    table = results.load_runs(role="student", alpha=0.5)
    assert len(table) == 1 and table.iloc[0]["acc"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="one length"):
        results.save_run(cfg, delta, correct[:2])


def test_head_fits_agree_between_solvers():
    """The convex fit (L-BFGS) and the Adam path (used with the conflict term) agree at alpha = 0+."""
    world = toy.make_world(dim=8, weak_dims=8, seed=0)
    pairs = toy.sample_pairs(world, 500, 0)
    x, y = pairs.diff("strong"), pairs.harmless_label
    w_lbfgs = heads.fit_pairwise_head(x, y, l2=1e-2)
    w_adam = heads.fit_pairwise_head(x, y, l2=1e-2, gt_label=y, alpha=1e-9, steps=2000, lr=0.02)
    assert torch.nn.functional.cosine_similarity(w_lbfgs, w_adam, dim=0) > 0.999


def test_explicit_conflict_makes_the_student_prefer_harmful_pairs_it_already_prefers():
    world = toy.make_world(dim=8, weak_dims=8, seed=0)
    pairs = toy.sample_pairs(world, 1000, 0)
    x, y = pairs.diff("strong"), pairs.harmless_label
    acc = lambda w: ((x @ w > 0).float() == y).float().mean().item()
    soft = torch.sigmoid(3 * (x @ torch.as_tensor(world.harmless, dtype=torch.float32)))
    base = heads.fit_pairwise_head(x, soft, l2=1e-2, gt_label=y, alpha=1e-9, steps=300)
    conflicted = heads.fit_pairwise_head(x, soft, l2=1e-2, gt_label=y, alpha=2.0, steps=300)
    assert acc(conflicted) < acc(base)


def test_regions_golden():
    from w2s_helpers import metrics

    weak = np.array([1, 1, 0, 0, 0], bool)
    strong = np.array([1, 0, 1, 0, 1], bool)
    cells = metrics.regions(weak, strong)
    assert {k: v.nonzero()[0].tolist() for k, v in cells.items()} == {
        "Wk∩Sk": [0], "Wk∩Suk": [1], "Wuk∩Sk": [2, 4], "Wuk∩Suk": [3]}
    table = metrics.region_accuracy(weak, strong, student=np.array([1, 1, 0, 1, 1], bool))
    assert table.loc["Wuk∩Sk", "student"] == 0.5 and table.loc["Wuk∩Sk", "pairs"] == 2
    with pytest.raises(ValueError, match="one length"):
        metrics.regions(weak, strong[:3])


def test_flip_rates_golden():
    from w2s_helpers import metrics

    weak = np.array([1, 1, 0, 0, 0, 0], bool)
    strong = np.array([1, 1, 1, 1, 1, 0], bool)
    before = np.array([1, 1, 1, 1, 0, 1], bool)
    after = np.array([1, 0, 0, 1, 1, 1], bool)  # pair 4 is a reverse flip: not counted
    t = metrics.flip_rates(weak, strong, before, after)
    assert t.loc["Wk∩Sk", "flip rate"] == 0.5 and t.loc["Wuk∩Sk", "flip rate"] == 0.5
    assert t.loc["Wuk∩Sk", "right before"] == 2 and t.loc["Wuk∩Suk", "flip rate"] == 0.0
    assert np.isnan(t.loc["Wk∩Suk", "flip rate"])
    same = metrics.flip_rates(weak, strong, before, before)
    assert (same["flipped"] == 0).all()


def test_exercise_checks_reject_wrong_answers():
    """The checks the chapter 1-2 exercises call must fail on plausible mistakes."""
    from w2s_helpers import checks, metrics

    pgr_cases = [(0.6, 0.7, 0.8), (0.6, 0.55, 0.8), (0.7, 0.8, 0.7)]
    with pytest.raises(AssertionError):  # forgets the no-gap case
        checks.compare(lambda w, s, st: (s - w) / (st - w + 1e-12), heads.pgr, pgr_cases, "pgr")
    with pytest.raises(AssertionError):  # wrong denominator
        checks.compare(lambda w, s, st: (s - w) / st, heads.pgr, pgr_cases, "pgr")

    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(12, generator=g) * 2, torch.rand(12, generator=g), (torch.rand(12, generator=g) > 0.5).float(), 0.5)]
    unmasked = lambda d, y, gt, a: (losses.pairwise_bce_per_pair(d, y) + a * losses.pairwise_bce_per_pair(d, 1 - gt)).mean()
    wrong_target = lambda d, y, gt, a: losses.explicit_conflict_loss(d, y, 1 - gt, a)
    for wrong in (unmasked, wrong_target):
        with pytest.raises(AssertionError):
            checks.compare(wrong, losses.explicit_conflict_loss, cases, "explicit_conflict_loss")

    w, s = np.array([1, 0, 1, 0], bool), np.array([1, 1, 0, 0], bool)
    swapped = lambda w_, s_: metrics.regions(s_, w_)["Wuk∩Sk"]  # weak and strong mixed up
    with pytest.raises(AssertionError):
        checks.compare(swapped, lambda w_, s_: metrics.regions(w_, s_)["Wuk∩Sk"], [(w, s)], "region_masks")


def test_weak_soft_labels_reference_and_check():
    from w2s_helpers import checks

    g = torch.Generator().manual_seed(0)
    case = (torch.randn(3, generator=g), torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g),
            torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g), 0)
    diff, soft = heads.weak_soft_labels(*case)
    assert diff.shape == (6, 5) and ((soft > 0) & (soft < 1)).all()
    # a student that forgets to put the strong features in the same slot order
    unshuffled = lambda w, wc, wr, sc, sr, s: sc - sr
    with pytest.raises(AssertionError):
        checks.compare(unshuffled, lambda *a: heads.weak_soft_labels(*a)[0], [case], "weak_soft_labels")


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_closed_form_adam_matches_torch_adam_on_the_course_loss(alpha):
    """heads' hand-written Adam = torch.optim.Adam on the autograd loss (same steps, same head)."""
    g = torch.Generator().manual_seed(0)
    diff = torch.randn(120, 7, generator=g)
    label = torch.rand(120, generator=g)
    gt = (torch.rand(120, generator=g) > 0.4).float()
    w = torch.zeros(7, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        d = diff @ w
        loss = losses.explicit_conflict_loss(d, label, gt, alpha) if alpha else losses.pairwise_loss(d, label)
        (loss + 0.1 * (w**2).sum()).backward()
        opt.step()
    ours = heads.fit_pairwise_head(diff, label, l2=0.1, gt_label=gt if alpha else None, alpha=alpha,
                                   steps=200, lr=0.05, solver="adam")
    torch.testing.assert_close(ours, w.detach(), atol=1e-5, rtol=1e-4)


def test_load_or_run_computes_once(isolated_cache):
    calls = []

    def compute():
        calls.append(1)
        return np.array([0.5, -1.0, 2.0])

    cfg = results.RunConfig(role="strong", model="m", profile="t")
    first = results.load_or_run(cfg, compute)
    again = results.load_or_run(cfg, compute)
    assert len(calls) == 1 and first["correct"].tolist() == [True, False, True]
    assert np.array_equal(first["delta"], again["delta"])
