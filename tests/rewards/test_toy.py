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


def test_placebos_and_a_smaller_weak_training_set():
    sizes = (200, 200, 300)
    a = toy.conflict_runs(seed=3, n=sizes, placebo_shares=(0.0, 0.1, 0.4))
    b = toy.conflict_runs(seed=3, n=sizes, placebo_shares=(0.0, 0.1, 0.4))
    assert set(a) >= {"weak", "strong", "no_conflict", "twin", "implicit", "explicit", "placebos", "margin_nc"}
    assert all(np.array_equal(a["placebos"][q], b["placebos"][q]) for q in a["placebos"])      # deterministic
    assert np.array_equal(a["placebos"][0.0], a["no_conflict"])            # share 0: the no-conflict student
    right = lambda q: a["placebos"][q].mean()
    assert right(0.4) < right(0.1) <= right(0.0)                           # more harmful labels, more harm
    plain = toy.conflict_runs(seed=3, n=sizes)
    assert "placebos" not in plain and all(np.array_equal(a[k], plain[k]) for k in plain)  # the rest unchanged
    two = toy.conflict_runs(seed=3, n=sizes, n_twins=2)
    assert len(two["twins"]) == 2 and np.array_equal(two["twins"][0], a["twin"])
    assert not np.array_equal(two["twins"][1], a["twin"])                  # another draw of D_w2s
    small = toy.conflict_runs(seed=3, n=sizes, n_weak=20)
    assert small["weak"].mean() < a["weak"].mean()                         # a weaker supervisor


def test_weak_view_for_matches_the_deceptive_cells_size():
    sizes = (300, 300, 600)
    def share(view):
        v = toy.conflict_runs(seed=0, n=sizes, weak_dims=view[0], weak_noise=view[1])
        return float((v["strong"] & ~v["weak"]).mean())
    small, large = toy.weak_view_for(0.05, sizes), toy.weak_view_for(0.35, sizes)
    assert share(small) < share(large)
    assert small[0] < 32 and large[0] < 32                                 # a hidden part is left for the conflict


def test_weak_view_for_matches_the_students_room_in_the_deceptive_cell():
    sizes = (300, 300, 600)
    def right(view):
        v = toy.conflict_runs(seed=0, n=sizes, weak_dims=view[0], weak_noise=view[1])
        cell = v["strong"] & ~v["weak"]
        return float(v["no_conflict"][cell].mean())
    copies, room = toy.weak_view_for(0.2, sizes, right_in_cell=0.0), toy.weak_view_for(0.2, sizes, right_in_cell=0.5)
    assert right(copies) < right(room)
