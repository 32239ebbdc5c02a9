"""The auxiliary confidence loss of Burns et al. (2023), "Weak-to-strong generalization", for a
linear reward head (the ``probe`` regime).

The student's loss mixes the weak label with its own hardened prediction:

    L = (1 - beta_t) * BCE(sigma(delta), y_weak) + beta_t * BCE(sigma(delta), 1[delta >= 0])

so once the student is confident it stops copying the weak labels it disagrees with. beta_t rises
linearly from 0 to ``beta`` over the first ``warmup`` share of the steps (Burns et al. warm up
over the first 20% of training). Both terms are BCE on one margin, so the loss equals BCE against
the mixed target (1 - beta_t) y_weak + beta_t 1[delta >= 0]: that is how it is fitted here. Burns
et al. threshold the predictions adaptively to a class prior; the course's random slot order
makes both sides equally likely, so the threshold is 0.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from w2s_helpers.rewards import heads
from w2s_helpers.rewards.lab import Fitted


def aux_target(weak_label: torch.Tensor, beta: float, steps: int, warmup: float = 0.2
               ) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """target(delta [N], step t = 1..steps) -> [N] = (1 - beta_t) * weak_label + beta_t * 1[delta >= 0],
    with beta_t = beta * min(1, t / (warmup * steps)). The hardened term carries no gradient."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    ramp = max(1.0, warmup * steps)

    def target(delta: torch.Tensor, t: int) -> torch.Tensor:
        b = beta * min(1.0, t / ramp)
        return (1 - b) * weak_label + b * (delta.detach() >= 0).to(weak_label.dtype)

    return target


def fit(lab, rung: str, parts: Sequence, seed: int, beta: float, alpha: float = 0.0,
        steps: int = 300, lr: float = 0.05) -> object:
    """A probe-regime student on ``parts`` (as ``lab.fit``: same slot order, L2 and Adam settings)
    with the auxiliary confidence loss of weight ``beta``; ``alpha`` adds the explicit-conflict term.
    Returns the lab's fitted model (score it with ``lab.margins``)."""
    if lab.regime != "probe":
        raise ValueError(f"the auxiliary confidence loss is implemented for the probe regime, not {lab.regime!r}")
    diff, label, keep = lab.training_set(rung, parts, seed)
    w = heads.fit_head_adam(diff, aux_target(label, beta, steps), l2=lab.l2[rung],
                            gt_label=keep if alpha else None, alpha=alpha, steps=steps, lr=lr)
    return Fitted(rung, "probe", w=w)
