"""Reference losses (the notebooks write them out; exercises are checked against these)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_loss(delta: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry pairwise loss, BCE(sigma(delta), label), averaged over pairs.

    delta: [N] reward margins r(A) - r(B).
    label: [N] probability that A is preferred: hard 0/1 (ground truth) or soft
           (a weak model's sigma(delta_weak)), as in the paper's reward-model scenario.
    Written with log-sigmoid so large margins never overflow.
    """
    return -(label * F.logsigmoid(delta) + (1 - label) * F.logsigmoid(-delta)).mean()
