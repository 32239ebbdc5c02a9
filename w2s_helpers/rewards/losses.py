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
    return pairwise_bce_per_pair(delta, label).mean()


def pairwise_bce_per_pair(delta: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Per-pair BCE(sigma(delta), label): [N] -> [N] (no reduction)."""
    return -(label * F.logsigmoid(delta) + (1 - label) * F.logsigmoid(-delta))


def explicit_conflict_loss(
    delta: torch.Tensor, weak_label: torch.Tensor, gt_label: torch.Tensor, alpha: float
) -> torch.Tensor:
    """The paper's explicit-conflict reward-model loss (PAPER.md section 2), mean over pairs.

        loss_i = BCE(sigma(delta_i), weak_label_i) + alpha * m_i * BCE(sigma(delta_i), 1 - y_i)
        m_i    = 1 iff the current prediction (delta_i >= 0) disagrees with y_i   (no gradient)

    delta: [N] margins r(A) - r(B); weak_label: [N] the weak label, soft: the weak model's
    probability sigma(delta_weak) that A is preferred; gt_label: [N] ground truth 1 iff A is the harmless side. The mask rewards the
    student for preferring the harmful side *whenever it already does*. Using ground truth
    here is a simulation device of the paper, not something a real trainer could do.
    Normalised by N over the whole batch (the reference code assumed a batch of 1).
    """
    base = pairwise_bce_per_pair(delta, weak_label)
    mask = ((delta >= 0).float() != gt_label).float().detach()
    return (base + alpha * mask * pairwise_bce_per_pair(delta, 1 - gt_label)).mean()


def placebo_labels(weak_label: torch.Tensor, gt_label: torch.Tensor | float, share: float, seed: int) -> torch.Tensor:
    """The placebo's training labels [N]: the weak labels with a random ``share`` of them (exactly
    round(share * N) pairs, drawn from ``seed``) replaced by the harmful side, 1 - y_i.

    weak_label: [N] P(A preferred) from the weak model; gt_label: [N] (or one number) ground truth,
    1 iff A is the harmless side (1.0 for chosen-first pairs). A student trained on these gets a
    push toward harm of a size set by ``share`` that is blind to what the supervisor can see:
    chapter 3 chooses the share so the push matches a conflict setting's
    (:func:`w2s_helpers.deception.verdict.match_placebos`).
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    label = weak_label.detach().clone().float()
    gt = torch.as_tensor(gt_label, dtype=torch.float32).expand_as(label)
    k = round(share * len(label))
    idx = torch.randperm(len(label), generator=torch.Generator().manual_seed(seed))[:k]
    label[idx] = 1 - gt[idx]
    return label
