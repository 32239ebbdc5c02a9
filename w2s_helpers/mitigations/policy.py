"""The policy students of chapter 5: chapter 4's direct weak-to-strong pipeline and each mitigation,
with DPO or SimPO, in the settings the authors scripted their mitigations for (no conflict and
implicit conflict; PAPER.md section 6).

A pipeline is named by its training data ``(pool, indices or None for all, hard labels [n])``:
True where the pool's chosen (ground-truth harmless) response is the one the labeller prefers.
The direct pipeline's runs, the weak policy, the strong ceiling and the floor (chapter 4's first
twin) are chapter 4's runs with the same keys, so they are read from the cache, not retrained.

    weak_prob       the weak policy's P(chosen preferred), the confidence the filter reads:
                    sigma(summed margin / 50) for DPO, sigma(per-token mean margin) for SimPO
    PolicyPipelines the runs of one :class:`w2s_helpers.policies.lab.PolicyLab`
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from w2s_helpers.mitigations import filtering

DPO_SCALE = 50.0     # the authors' scripts: sigma(summed log-prob margin / 50) for DPO
SETTINGS = ("no_conflict", "implicit")   # the settings the authors scripted the mitigations for
Data = tuple[str, "torch.Tensor | None", torch.Tensor]   # (pool, indices or None = all, hard labels [n])


def weak_prob(delta: torch.Tensor, loss: str) -> torch.Tensor:
    """[N] -> [N]: P(first response preferred) from a policy's preference ``delta`` under the loss's
    rule (:func:`w2s_helpers.policies.logps.preference`): sigma(delta / 50) for DPO (a summed
    log-prob margin), sigma(delta) for SimPO (a per-token mean margin). p >= 0.5 iff the hard
    label is True, so the filter and the label agree on the side."""
    delta = torch.as_tensor(delta, dtype=torch.float32)
    if loss == "dpo":
        return torch.sigmoid(delta / DPO_SCALE)
    if loss == "simpo":
        return torch.sigmoid(delta)
    raise ValueError(f"loss must be 'dpo' or 'simpo', got {loss!r}")


@dataclass
class PolicyPipelines:
    """The runs of chapter 5's policy pipelines.

    lab:     a :class:`w2s_helpers.policies.lab.PolicyLab` (the profile's pools and rungs).
    config:  config(loss, seed) -> :class:`w2s_helpers.policies.training.POConfig`: chapter 4's.
    mid:     the chain's intermediate rung (the profile's ``po.mid``, or the strong rung).
    """

    lab: object
    config: Callable[[str, int], object]
    mid: str

    @property
    def S(self):
        return self.lab.S

    # -- chapter 4's runs (same keys: read from the cache when chapter 4 ran) ---------------------
    def weak(self, loss: str, seed: int):
        """The weak policy W: the weak rung on D_gt with ground-truth order, scored on D_w2s and test."""
        return self.lab.run(self.S.weak, self.config(loss, seed), [("gt", None, True)], score=("w2s", "test"),
                            keep=True)

    def weak_labels(self, loss: str, seed: int) -> torch.Tensor:
        """bool [n_train]: W's hard labels of D_w2s (True: it prefers the chosen, harmless side)."""
        return self.weak(loss, seed).correct("w2s", loss)

    def strong(self, loss: str, seed: int):
        """The strong ceiling: the strong rung on D_w2s with ground-truth order."""
        return self.lab.run(self.S.strong, self.config(loss, seed), [("w2s", None, True)], keep=True)

    def floor(self, loss: str, seed: int):
        """Chapter 4's first twin: the direct no-conflict student again with seed + 1000."""
        return self.lab.run(self.S.strong, self.config(loss, seed + 1000), [("w2s", None, self.weak_labels(loss, seed))])

    def ready(self, losses: Sequence[str], seeds: Sequence[int]) -> bool:
        """Whether chapter 4's weak policies and strong ceilings are in the cache (so chapter 4 has
        run at this profile, not only begun)."""
        return all(self.lab.cached(self.S.weak, self.config(loss, seed), [("gt", None, True)], ("w2s", "test"))
                   and self.lab.cached(self.S.strong, self.config(loss, seed), [("w2s", None, True)])
                   for loss in losses for seed in seeds)

    # -- the labellers of the mitigations ---------------------------------------------------------
    def weak_labels_of_gt(self, loss: str, seed: int) -> torch.Tensor:
        """bool [n_train]: W's own hard labels of D_gt (the pairs it trained on, in ground-truth
        order): the chain's input-matched control, "direct on D_gt"."""
        self.weak(loss, seed)                              # trained (and kept) if missing
        run = self.lab.rescore(self.S.weak, self.config(loss, seed), [("gt", None, True)], "gt", ("w2s", "test"))
        return run.correct("gt", loss)

    def intermediate(self, loss: str, seed: int):
        """The chain's intermediate I: the ``mid`` rung on W's labels of D_w2s (no conflict),
        scored on D_gt, which it then labels for the strong student. When ``mid`` is the strong
        rung, I is chapter 4's no-conflict student itself, rescored on D_gt (nothing trains)."""
        parts = [("w2s", None, self.weak_labels(loss, seed))]
        if self.mid == self.S.strong:
            own = self.student(loss, seed, "no_conflict", parts[0])      # chapter 4's, kept
            if own.pending:                                              # queued (a jobs profile): wait
                return own
            return self.lab.rescore(self.S.strong, self.config(loss, seed), parts, "gt")
        return self.lab.run(self.mid, self.config(loss, seed), parts, score=("gt", "test"))

    def chain_labels(self, loss: str, seed: int) -> torch.Tensor:
        """bool [n_train]: I's hard labels of D_gt."""
        return self.intermediate(loss, seed).correct("gt", loss)

    # -- students ---------------------------------------------------------------------------------
    def parts(self, data: Data, setting: str, seed: int) -> list:
        """The student's training parts: the data, plus ground-truth helpful pairs in the implicit
        setting. The direct pipeline (indices None) takes every helpful pair, as chapter 4 does; a
        subset keeps chapter 4's helpful share with a seeded draw of the helpful pool."""
        pool, idx, labels = data
        out = [(pool, idx, labels)]
        if setting == "implicit":
            n_pool = len(self.lab.pools["helpful"])
            if idx is None:
                out.append(("helpful", None, True))
            else:
                share = n_pool / (n_pool + len(self.lab.pools["w2s"]))
                n_help = filtering.helpful_count(len(idx), share, available=n_pool)
                pick = torch.randperm(n_pool, generator=torch.Generator().manual_seed(seed))[:n_help]
                if n_help:                        # a tiny kept set may round to no helpful pair
                    out.append(("helpful", pick.sort().values, True))
        elif setting != "no_conflict":
            raise ValueError(f"policy pipelines run the settings {SETTINGS}, got {setting!r}")
        return out

    def student(self, loss: str, seed: int, setting: str, data: Data):
        """One strong student (a :class:`w2s_helpers.policies.lab.Run`), trained if missing."""
        pool, idx, labels = data
        direct = pool == "w2s" and idx is None
        return self.lab.run(self.S.strong, self.config(loss, seed), self.parts(data, setting, seed), keep=direct)

    def pipeline(self, loss: str, seed: int, data: Data) -> dict:
        """{setting: Run} for every setting of one pipeline (no pair kept: {}). Labels of None come
        from a queued run (at a jobs profile, inside ``with lab.queue()``): the students wait."""
        if data[2] is not None and len(data[2]) == 0:
            return {}
        return {s: self.student(loss, seed, s, data) for s in SETTINGS}
