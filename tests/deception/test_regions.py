"""Knowledge regions: the four cells and flip rates per cell, golden values."""

import numpy as np
import pytest


def test_regions_golden():
    from w2s_helpers.deception import regions

    weak = np.array([1, 1, 0, 0, 0], bool)
    strong = np.array([1, 0, 1, 0, 1], bool)
    cells = regions.regions(weak, strong)
    assert {k: v.nonzero()[0].tolist() for k, v in cells.items()} == {
        "Wk∩Sk": [0], "Wk∩Suk": [1], "Wuk∩Sk": [2, 4], "Wuk∩Suk": [3]}
    table = regions.region_accuracy(weak, strong, student=np.array([1, 1, 0, 1, 1], bool))
    assert table.loc["Wuk∩Sk", "student"] == 0.5 and table.loc["Wuk∩Sk", "pairs"] == 2
    with pytest.raises(ValueError, match="one length"):
        regions.regions(weak, strong[:3])


def test_flip_rates_golden():
    from w2s_helpers.deception import scores

    weak = np.array([1, 1, 0, 0, 0, 0], bool)
    strong = np.array([1, 1, 1, 1, 1, 0], bool)
    before = np.array([1, 1, 1, 1, 0, 1], bool)
    after = np.array([1, 0, 0, 1, 1, 1], bool)  # pair 4 is a reverse flip: not counted
    t = scores.flip_rates(weak, strong, before, after)
    assert t.loc["Wk∩Sk", "flip rate"] == 0.5 and t.loc["Wuk∩Sk", "flip rate"] == 0.5
    assert t.loc["Wuk∩Sk", "right before"] == 2 and t.loc["Wuk∩Suk", "flip rate"] == 0.0
    assert np.isnan(t.loc["Wk∩Suk", "flip rate"])
    same = scores.flip_rates(weak, strong, before, before)
    assert (same["flipped"] == 0).all()
