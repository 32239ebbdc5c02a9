import pytest
import torch

from w2s_helpers.mitigations import filtering


def test_golden_filter_cases_for_both_variants():
    prob = torch.tensor([0.9, 0.1, 0.6, 0.75, 0.2, 0.5])
    gt = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    # confidence: max(p, 1 - p) >= 0.75 -> 0.9, 0.9, 0.6, 0.75, 0.8, 0.5
    assert filtering.keep_mask(prob, 0.75, "confidence").tolist() == [True, True, False, True, True, False]
    # oracle: the probability on the ground-truth side -> 0.9, 0.1, 0.6, 0.25, 0.8, 0.5
    assert filtering.keep_mask(prob, 0.75, "oracle", gt).tolist() == [True, False, False, False, True, False]
    # chosen-first pools: ground truth 1.0 everywhere
    assert filtering.keep_mask(prob, 0.75, "oracle", 1.0).tolist() == [True, False, False, True, False, False]


def test_the_oracle_keeps_only_pairs_the_weak_model_got_right():
    g = torch.Generator().manual_seed(0)
    prob, gt = torch.rand(500, generator=g), (torch.rand(500, generator=g) < 0.5).float()
    for t in (0.5, 0.6, 0.75, 0.95):
        keep = filtering.keep_mask(prob, t, "oracle", gt)
        assert (((prob[keep] >= 0.5).float()) == gt[keep]).all()
        # and it keeps a subset of what confidence alone keeps
        assert not (keep & ~filtering.keep_mask(prob, t, "confidence")).any()


def test_bad_filter_input_is_refused():
    with pytest.raises(ValueError, match="threshold"):
        filtering.keep_mask(torch.tensor([0.5]), 0.4)
    with pytest.raises(ValueError, match="ground truth"):
        filtering.keep_mask(torch.tensor([0.5]), 0.75, "oracle")
    with pytest.raises(ValueError, match="variant"):
        filtering.keep_mask(torch.tensor([0.5]), 0.75, "oracel")


def test_size_matching_keeps_the_helpful_share():
    assert filtering.helpful_count(100, 0.5) == 100             # the scripts' "same size"
    assert filtering.helpful_count(300, 0.25) == 100
    assert filtering.helpful_count(300, 0.25, available=40) == 40
    assert filtering.helpful_count(0, 0.3) == 0
    n_kept = 123
    k = filtering.helpful_count(n_kept, 0.3)
    assert abs(k / (k + n_kept) - 0.3) < 0.01
    with pytest.raises(ValueError):
        filtering.helpful_count(10, 1.0)


def test_the_random_control_has_the_kept_size_and_is_seeded():
    a = filtering.same_size_subset(50, 17, seed=3)
    assert len(a) == 17 and len(set(a.tolist())) == 17 and a.max() < 50
    assert torch.equal(a, filtering.same_size_subset(50, 17, seed=3))
    assert not torch.equal(a, filtering.same_size_subset(50, 17, seed=4))
    with pytest.raises(ValueError):
        filtering.same_size_subset(5, 6, seed=0)
