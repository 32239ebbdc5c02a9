"""Linear reward heads: solvers agree, PGR, weak soft labels, the explicit term's effect."""

import math

import pytest
import torch

from w2s_helpers.rewards import heads, losses, toy


def test_pgr():
    assert heads.pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert math.isnan(heads.pgr(0.7, 0.7, 0.7))


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


def test_weak_soft_labels_reference_and_check():
    from w2s_helpers.course import checks

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


def test_trace_adam_is_the_adam_fit_with_a_record():
    import torch

    from w2s_helpers.rewards import heads

    g = torch.Generator().manual_seed(0)
    diff = torch.randn(200, 8, generator=g)
    truth = diff @ torch.randn(8, generator=g) > 0
    label, gt = truth.float() * 0.8 + 0.1, truth.float()
    held = torch.randn(100, 8, generator=g)
    for alpha in (0.0, 0.5):
        w, h = heads.trace_adam(diff, label, l2=1e-2, gt_label=gt, alpha=alpha, steps=120, every=10,
                                watch={"held": (held, torch.ones(100, dtype=torch.bool))})
        same = heads.fit_pairwise_head(diff, label, l2=1e-2, gt_label=gt if alpha else None, alpha=alpha,
                                       steps=120, solver="adam")
        assert torch.equal(w, same)
        assert h["step"] == list(range(10, 121, 10)) and len(h["loss"]) == len(h["accuracy held"]) == 12
        assert h["loss"][-1] < h["loss"][0] and all(0 <= a <= 1 for a in h["accuracy held"])
