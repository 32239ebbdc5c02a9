"""The profile's pools: fixed seeded subsets of the paper's splits that every chapter shares.

A *split* is one of the paper's files (D_gt, D_w2s, D_test, the helpful pairs:
:data:`w2s_helpers.core.data.SPLITS`); a *pool* is the profile's subset of it, drawn once
with seed 0, so every run of every regime and scenario is scored on the same test pairs.
Pools are keyed ``gt``, ``w2s``, ``test`` and ``helpful``.
"""

from __future__ import annotations

from w2s_helpers.core import data
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.core.profiles import Profile


def draw_pools(profile: Profile, helpful: bool = False) -> dict[str, list[PreferencePair]]:
    """The profile's fixed pools (seed 0): gt, w2s, test and optionally helpful."""
    pools = {
        "gt": data.load_split("harmless_gt", n=profile.n_train, seed=0),
        "w2s": data.load_split("harmless_w2s", n=profile.n_train, seed=0),
        "test": data.load_split("harmless_test", n=profile.n_test, seed=0),
    }
    if helpful:
        available = len(data.load_split("helpful"))
        n = available if profile.n_helpful is None else min(profile.n_helpful, available)
        pools["helpful"] = data.load_split("helpful", n=n, seed=0)
    return pools
