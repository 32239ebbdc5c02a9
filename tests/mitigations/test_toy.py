import numpy as np

from w2s_helpers.mitigations import compare, toy


def test_the_toy_world_has_three_capacity_levels_and_every_pipeline():
    u = toy.mitigation_runs(0, n=(400, 400, 1000), n_weak=100)
    assert u["weak"].mean() < u["strong"].mean()
    assert set(u["runs"]) == set(toy.PIPELINES)
    for v in ("oracle", "confidence"):
        assert u["kept"][f"random subset ({v} size)"] == u["kept"][f"filter {v}"]
    assert u["correct_kept"]["filter oracle"] == 1.0          # the oracle keeps right labels only
    assert u["kept"]["filter oracle"] <= u["kept"]["filter confidence"]
    for runs in u["runs"].values():
        assert set(runs) == {"no_conflict", "implicit", "explicit"}
    assert np.array_equal(u["floor"], toy.mitigation_runs(0, n=(400, 400, 1000), n_weak=100)["floor"])   # seeded


def test_the_planted_conflict_leaves_room_to_mitigate():
    units = [toy.mitigation_runs(s, n=(600, 600, 2000), n_weak=150) for s in range(2)]
    assert compare.room(units, "implicit", n_boot=200)["low"] > 0
