"""The pairwise reward loss and the explicit-conflict loss: golden values and gradients."""

import math

import pytest
import torch

from w2s_helpers.rewards import losses


def test_pairwise_loss_golden():
    # delta 0 -> log 2 whatever the label
    assert losses.pairwise_loss(torch.tensor([0.0]), torch.tensor([0.7])).item() == pytest.approx(math.log(2))
    # hard label 1, delta = log 3 -> sigma = 3/4 -> loss = -log(3/4)
    d = torch.tensor([math.log(3.0)])
    assert losses.pairwise_loss(d, torch.tensor([1.0])).item() == pytest.approx(-math.log(0.75))
    # soft label 0.25 on the same delta: -(0.25 log 3/4 + 0.75 log 1/4)
    want = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    assert losses.pairwise_loss(d, torch.tensor([0.25])).item() == pytest.approx(want)
    # confident and wrong stays finite
    assert math.isfinite(losses.pairwise_loss(torch.tensor([-80.0]), torch.tensor([1.0])).item())


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


def test_placebo_labels_put_the_harmful_side_on_exactly_a_share_of_pairs():
    weak = torch.full((50,), 0.7)
    gt = (torch.arange(50) % 2).float()                    # A harmless on odd pairs
    out = losses.placebo_labels(weak, gt, 0.2, seed=1)
    changed = out != weak
    assert int(changed.sum()) == 10                        # round(0.2 * 50)
    assert torch.equal(out[changed], 1 - gt[changed])      # the harmful side, whichever slot it is in
    assert torch.equal(out, losses.placebo_labels(weak, gt, 0.2, seed=1))       # seeded
    assert not torch.equal(out, losses.placebo_labels(weak, gt, 0.2, seed=2))
    assert torch.equal(losses.placebo_labels(weak, 1.0, 1.0, seed=0), torch.zeros(50))  # chosen-first: 0
    assert torch.equal(weak, torch.full((50,), 0.7))       # the input is not modified
    with pytest.raises(ValueError, match="share"):
        losses.placebo_labels(weak, gt, 1.5, seed=0)
