"""The ``probe`` regime's plumbing: fixed data pools, cached features per rung, ceilings.

Chapters 1 and 2 train many heads on the same features. :class:`ProbeLab` extracts them
once per profile (cached on disk), standardises each rung's features with statistics of
the D_gt pool, picks each rung's L2 penalty by cross-validation on D_gt, and trains
ceilings. The notebooks keep what is the idea (soft labels, the students, the conflict
settings) in their own cells.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from . import data, features, heads, models
from .data import PreferencePair
from .profiles import Profile

Pair = tuple[torch.Tensor, torch.Tensor]  # (chosen [N, H], rejected [N, H])


@dataclass
class ProbeLab:
    """Features of fixed pools for every rung of a profile.

    pools:     split name ("gt", "w2s", "test", optionally "helpful") -> pairs, drawn once
               with seed 0 so every run shares the same test pairs.
    phi:       rung -> split -> standardised (chosen, rejected) features.
    l2:        rung -> L2 penalty chosen by 5-fold cross-validation on D_gt.
    data_hash: hash of the gt, w2s and test pools (keys saved results).
    """

    profile: Profile
    pools: dict[str, list[PreferencePair]]
    phi: dict[str, dict[str, Pair]] = field(default_factory=dict)
    l2: dict[str, float] = field(default_factory=dict)
    data_hash: str = ""

    @classmethod
    def build(cls, profile: Profile, helpful: bool = False, verbose: bool = True) -> "ProbeLab":
        """Draw the pools, extract (or read cached) features, standardise, choose L2."""
        pools = {
            "gt": data.load_split("harmless_gt", n=profile.n_train, seed=0),
            "w2s": data.load_split("harmless_w2s", n=profile.n_train, seed=0),
            "test": data.load_split("harmless_test", n=profile.n_test, seed=0),
        }
        if helpful:
            available = len(data.load_split("helpful"))
            n = available if profile.n_helpful is None else min(profile.n_helpful, available)
            pools["helpful"] = data.load_split("helpful", n=n, seed=0)
        lab = cls(profile, pools, data_hash=data.pairs_hash(pools["gt"] + pools["w2s"] + pools["test"]))
        for name in profile.ladder:
            t0 = time.perf_counter()
            lm = models.load(name, device=profile.device, dtype=profile.features.dtype, install_missing=True)
            raw = {split: features.pair_features(lm, pairs, profile.features) for split, pairs in pools.items()}
            del lm
            c, r = raw["gt"]
            both = torch.cat([c, r])
            mu, sd = both.mean(0), both.std(0).clamp(min=1e-6)
            lab.phi[name] = {split: ((c - mu) / sd, (r - mu) / sd) for split, (c, r) in raw.items()}
            a, b, y = heads.slot_order(*lab.phi[name]["gt"], seed=0)
            lab.l2[name] = heads.choose_l2(a - b, y)
            if verbose:
                n_pairs = sum(len(p) for p in pools.values())
                print(f"{name}: features of {n_pairs} pairs ready in {time.perf_counter() - t0:.1f} s, "
                      f"L2 = {lab.l2[name]:g}", flush=True)
        return lab

    def train_idx(self, split: str, seed: int, frac: float = 0.8) -> torch.Tensor:
        """Indices of a seeded random ``frac`` of a pool (each seed trains on other data)."""
        n = len(self.pools[split])
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: int(frac * n)]

    def ceiling(self, rung: str, seed: int, n: int | None = None) -> torch.Tensor:
        """A head on ground truth of the seed's D_gt subset (its first ``n`` pairs if given)."""
        idx = self.train_idx("gt", seed)[:n]
        c, r = (x[idx] for x in self.phi[rung]["gt"])
        a, b, y = heads.slot_order(c, r, seed)
        return heads.fit_pairwise_head(a - b, y, l2=self.l2[rung])

    def margins(self, rung: str, w: torch.Tensor, split: str = "test") -> torch.Tensor:
        """delta [N] = r(chosen) - r(rejected) for every pair of a pool."""
        c, r = self.phi[rung][split]
        return (c - r) @ w
