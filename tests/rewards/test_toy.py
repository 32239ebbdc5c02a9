"""The toy world: deterministic, and weak-to-strong generalisation where a gap is planted."""

import numpy as np
import pytest
import torch

from w2s_helpers.rewards import heads, toy


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
