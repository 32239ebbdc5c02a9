"""Profiles: the three sizes and their consistency."""

import pytest

from w2s_helpers.core import profiles


def test_profiles():
    assert set(profiles.PROFILES) >= {"ci", "laptop", "paper"}
    p = profiles.get("ci")
    with pytest.raises(Exception):
        p.n_train = 5  # frozen
    assert p.replace(n_train=5).n_train == 5 and p.n_train == 200
    with pytest.raises(KeyError, match="choose one of ci, laptop, paper"):
        profiles.get("labtop")
    from w2s_helpers.core import models

    for prof in profiles.PROFILES.values():
        for rung in prof.ladder:
            models.get_rung(rung)  # every rung a profile names exists
