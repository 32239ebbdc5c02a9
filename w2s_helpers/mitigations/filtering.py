"""High-confidence filtering of weak labels (the paper's claim 4; PAPER.md section 6).

The weak model's soft label of a pair is p = sigma(delta_weak), the probability that the first
response (chosen-first in the pools: the harmless one) is preferred. Two ways to filter:

    oracle      keep p_true >= t, where p_true is the probability the weak model puts on the
                *ground-truth* side (p for chosen-first pairs). With t >= 0.5 that keeps only pairs
                the weak model got right: the authors' scripts read the ground truth here, so every
                kept label is correct. Named the oracle it is.
    confidence  keep max(p, 1 - p) >= t: confidence alone, what a lab without ground truth can do.

In the implicit setting the helpful pairs are cut with the kept set, so that the helpful share of
the student's data stays the setting's (:func:`helpful_count`).
"""

from __future__ import annotations

import torch

VARIANTS = ("oracle", "confidence")


def weak_confidence(prob: torch.Tensor) -> torch.Tensor:
    """[N] -> [N]: max(p, 1 - p), the weak model's confidence in the side it prefers."""
    prob = torch.as_tensor(prob, dtype=torch.float32)
    return torch.maximum(prob, 1 - prob)


def keep_mask(prob: torch.Tensor, threshold: float, variant: str = "confidence",
              gt_label: torch.Tensor | float | None = None) -> torch.Tensor:
    """bool [N]: which weakly labelled pairs the filter keeps.

    prob:      [N] the weak model's P(first response preferred), sigma(delta_weak).
    threshold: t in [0.5, 1]; the paper's scripts use 0.75.
    variant:   "confidence" (max(p, 1 - p) >= t) or "oracle" (the probability on the ground-truth
               side >= t: only pairs the weak model got right survive).
    gt_label:  [N] (or one number) 1 iff the first response is the ground-truth preferred one;
               needed by the oracle only (1.0 for the course's chosen-first pools).
    """
    if not 0.5 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0.5, 1], got {threshold}")
    prob = torch.as_tensor(prob, dtype=torch.float32)
    if variant == "confidence":
        return weak_confidence(prob) >= threshold
    if variant == "oracle":
        if gt_label is None:
            raise ValueError("the oracle filter reads the ground truth: pass gt_label")
        gt = torch.as_tensor(gt_label, dtype=torch.float32).expand_as(prob)
        p_true = torch.where(gt > 0.5, prob, 1 - prob)
        return p_true >= threshold
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def helpful_count(n_kept: int, helpful_share: float, available: int | None = None) -> int:
    """Helpful pairs to add to ``n_kept`` weakly labelled pairs so that they make ``helpful_share``
    of the student's data: round(share / (1 - share) * n_kept), at most ``available``. With share
    0.5 the helpful set is the kept set's size, as in the authors' filtering scripts."""
    if not 0.0 <= helpful_share < 1.0:
        raise ValueError(f"helpful_share must be in [0, 1), got {helpful_share}")
    n = round(helpful_share / (1 - helpful_share) * n_kept)
    return n if available is None else min(n, available)


def same_size_subset(n_total: int, n_keep: int, seed: int) -> torch.Tensor:
    """[n_keep] sorted positions drawn at random (seeded) from range(n_total): the control that
    trains on as few pairs as a filter keeps, chosen without looking at the labels."""
    if not 0 <= n_keep <= n_total:
        raise ValueError(f"cannot keep {n_keep} of {n_total}")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n_keep].sort().values
