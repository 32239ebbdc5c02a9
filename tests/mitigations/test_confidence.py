import pytest
import torch

from w2s_helpers.mitigations import confidence
from w2s_helpers.rewards import heads


def test_the_aux_target_mixes_weak_labels_and_hardened_predictions_after_warmup():
    weak = torch.tensor([0.2, 0.9, 0.6])
    delta = torch.tensor([1.0, -1.0, 0.0])
    target = confidence.aux_target(weak, beta=0.5, steps=100, warmup=0.2)
    assert torch.allclose(target(delta, 10), 0.75 * weak + 0.25 * torch.tensor([1.0, 0.0, 1.0]))   # half-way up
    assert torch.allclose(target(delta, 20), 0.5 * weak + 0.5 * torch.tensor([1.0, 0.0, 1.0]))
    assert torch.allclose(target(delta, 90), target(delta, 20))
    assert torch.allclose(confidence.aux_target(weak, 0.0, 100)(delta, 50), weak)
    with pytest.raises(ValueError):
        confidence.aux_target(weak, 1.5, 100)


def test_beta_zero_is_the_plain_student_and_beta_makes_it_confident():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g)
    truth = (x[:, 0] > 0).float()
    flipped = torch.rand(300, generator=g) < 0.3
    weak = torch.where(flipped, 1 - truth, truth) * 0.8 + 0.1               # 30% wrong, soft
    plain = heads.fit_pairwise_head(x, weak, l2=1e-3, solver="adam")
    same = heads.fit_head_adam(x, confidence.aux_target(weak, 0.0, 300), l2=1e-3)
    assert torch.allclose(plain, same, atol=1e-6)
    aux = heads.fit_head_adam(x, confidence.aux_target(weak, 0.75, 300), l2=1e-3)
    sure = lambda w: torch.sigmoid(x @ w).sub(0.5).abs().mean()
    right = lambda w: ((x @ w > 0).float() == truth).float().mean()
    assert sure(aux) > 1.5 * sure(plain)      # pulled toward its own hard labels, not the soft weak ones
    assert right(aux) >= right(plain) - 0.02  # without losing the direction the weak labels share
