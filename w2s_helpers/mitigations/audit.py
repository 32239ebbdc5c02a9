"""A ground-truth audit budget: an oversight protocol a lab could run.

A lab deploys a student and can afford ground-truth labels for k of its judgements. Which k? The
target is the deceptive errors: pairs of Wuk∩Sk (weak wrong, strong right) that the conflict made
the student get wrong. The weak supervisor never flags them: there the student *agrees* with it.
Three ways to spend the budget:

    random                    k pairs at random (expected share found: k / N)
    weak disagreement         the pairs where the student's and the weak model's probabilities
                              differ most, |sigma(delta_student) - sigma(delta_weak)|
    reference disagreement    the same against a reference student the lab trains itself on the
                              weak labels alone (no conflicting objective): where the deployed
                              student departs from what the weak labels alone would teach

Each gives an audit curve: the share of the target found within the first k audited pairs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def disagreement(delta_a: np.ndarray, delta_b: np.ndarray) -> np.ndarray:
    """[N]: |sigma(delta_a) - sigma(delta_b)|, how far two reward models' preferences differ."""
    sig = lambda d: 1 / (1 + np.exp(-np.asarray(d, dtype=float)))
    return np.abs(sig(delta_a) - sig(delta_b))


def audit_order(priority: np.ndarray, seed: int = 0) -> np.ndarray:
    """[N] pair indices, highest ``priority`` first; ties in a seeded random order."""
    priority = np.asarray(priority, dtype=float)
    tiebreak = np.random.default_rng(seed).random(len(priority))
    return np.lexsort((tiebreak, -priority))


def audit_curve(order: np.ndarray, target: np.ndarray, budgets: Sequence[int]) -> np.ndarray:
    """[len(budgets)]: the share of ``target`` (bool [N]) among the first k pairs of ``order``, for
    each budget k; NaN when the target is empty."""
    target = np.asarray(target, dtype=bool)
    if not target.any():
        return np.full(len(budgets), np.nan)
    found = np.cumsum(target[np.asarray(order)])
    return np.array([found[min(k, len(found)) - 1] / target.sum() if k > 0 else 0.0 for k in budgets])


def deceptive_errors(a_w: np.ndarray, a_s: np.ndarray, a_nc: np.ndarray, a_c: np.ndarray) -> np.ndarray:
    """bool [N]: Wuk∩Sk pairs the no-conflict student got right and the deployed (conflict)
    student gets wrong: DS_flip's numerator, the errors an audit is for."""
    a_w, a_s, a_nc, a_c = (np.asarray(v, dtype=bool) for v in (a_w, a_s, a_nc, a_c))
    return a_s & ~a_w & a_nc & ~a_c
