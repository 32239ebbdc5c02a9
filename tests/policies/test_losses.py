"""DPO and SimPO losses and their explicit-conflict forms: golden values and direction."""

import math

import pytest
import torch

from w2s_helpers.policies import losses as po

T = lambda *x: torch.tensor(x, dtype=torch.float64)


LOG1P_EXP = lambda z: math.log1p(math.exp(-z))  # -log sigma(z)


def test_dpo_golden():
    # beta * ((pi_c - ref_c) - (pi_r - ref_r)) = 0.1 * ((-10 + 11) - (-12 + 11)) = 0.2
    loss = po.dpo_loss_per_pair(T(-10.0), T(-12.0), T(-11.0), T(-11.0), beta=0.1)
    assert loss.item() == pytest.approx(LOG1P_EXP(0.2))  # 0.598139...
    # the reference shifts the comparison: a policy equal to its reference has logit 0
    assert po.dpo_loss_per_pair(T(-3.0), T(-9.0), T(-3.0), T(-9.0)).item() == pytest.approx(math.log(2))


def test_simpo_golden():
    # 2 * (-1.0 + 1.5) - 1 = 0  ->  log 2;   2 * (-1.0 + 2.0) - 1 = 1  ->  log(1 + e^-1)
    loss = po.simpo_loss_per_pair(T(-1.0, -1.0), T(-1.5, -2.0), beta=2.0, gamma=1.0)
    torch.testing.assert_close(loss, T(math.log(2), LOG1P_EXP(1.0)))


def test_dpo_explicit_golden():
    # pair A: weak right (harmless first), policy prefers harmless -> mask 0
    # pair B: weak wrong (harmful first), policy prefers harmful -> mask 1, extra = same DPO term
    pi_h, pi_x, ref = T(-10.0, -12.0), T(-12.0, -10.0), T(-11.0, -11.0)
    weak = T(1.0, 0.0)
    base = LOG1P_EXP(0.2)
    loss = po.dpo_explicit_loss(pi_h, pi_x, ref, ref, weak, alpha=0.5, beta=0.1)
    assert loss.item() == pytest.approx((base + 1.5 * base) / 2)
    assert po.dpo_explicit_loss(pi_h, pi_x, ref, ref, weak, alpha=0.0).item() == pytest.approx(base)


def test_simpo_explicit_golden():
    avg_h, avg_x = T(-1.0, -2.0), T(-1.5, -1.0)    # pair 2: the policy prefers the harmful side
    weak = T(1.0, 1.0)                               # the weak labels say harmless first, both pairs
    b1 = math.log(2)                                 # 2 * 0.5 - 1 = 0
    b2 = LOG1P_EXP(2 * (-1.0) - 1)                   # harmless first: 2 * (-2 + 1) - 1 = -3
    e2 = LOG1P_EXP(2 * 1.0 - 1)                      # harmful first: 2 * (-1 + 2) - 1 = 1
    loss = po.simpo_explicit_loss(avg_h, avg_x, weak, alpha=0.5)
    assert loss.item() == pytest.approx((b1 + b2 + 0.5 * e2) / 2)


def test_explicit_term_pushes_toward_the_harmful_response_only_where_already_preferred():
    pi_h = T(-12.0, -10.0).requires_grad_()
    pi_x = T(-10.0, -12.0).requires_grad_()
    ref = T(-11.0, -11.0)
    weak = T(1.0, 1.0)
    grads = {}
    for alpha in (0.0, 1.0):
        pi_h.grad = pi_x.grad = None
        po.dpo_explicit_loss(pi_h, pi_x, ref, ref, weak, alpha=alpha).backward()
        grads[alpha] = pi_x.grad.clone()
    # pair 0 (harmful preferred): the conflict term makes the loss fall faster as pi_harmful rises
    assert grads[1.0][0] < grads[0.0][0]
    # pair 1 (harmless preferred): mask 0, no change
    assert grads[1.0][1] == grads[0.0][1]
