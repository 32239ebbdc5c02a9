"""Linear pairwise reward heads on fixed features (the ``probe`` regime and the toy world).

A head is a weight vector w [H]; the reward of a text is r(x) = w . phi(x), so a pair's
margin is delta = w . (phi(A) - phi(B)) and a bias would cancel. Training minimises the
paper's losses (:mod:`w2s_helpers.losses`) plus an L2 penalty, with full-batch Adam
so the explicit-conflict mask is re-evaluated as the head changes.
"""

from __future__ import annotations

import torch

from . import losses


def fit_pairwise_head(
    diff: torch.Tensor,
    label: torch.Tensor,
    l2: float = 1e-2,
    gt_label: torch.Tensor | None = None,
    alpha: float = 0.0,
    steps: int = 300,
    lr: float = 0.05,
) -> torch.Tensor:
    """Fit w [H] on feature differences ``diff`` [N, H] = phi(A) - phi(B).

    label:    [N] target probability that A is preferred (hard GT or a weak soft label).
    gt_label: [N] ground truth, needed only for the explicit-conflict term (alpha > 0).
    Deterministic: starts from zero and uses full batches (no sampling).
    """
    if alpha and gt_label is None:
        raise ValueError("the explicit-conflict term (alpha > 0) needs gt_label")
    w = torch.zeros(diff.shape[1], requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        delta = diff @ w
        if alpha:
            loss = losses.explicit_conflict_loss(delta, label, gt_label, alpha)
        else:
            loss = losses.pairwise_loss(delta, label)
        (loss + l2 * (w**2).sum()).backward()
        opt.step()
    return w.detach()


def margins(w: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
    """delta [N] = w . (phi(A) - phi(B))."""
    return diff @ w


def pgr(acc_weak: float, acc_student: float, acc_strong: float) -> float:
    """Performance gap recovered (Burns et al. 2023):
    (acc_student - acc_weak) / (acc_strong - acc_weak); NaN unless acc_strong > acc_weak."""
    gap = acc_strong - acc_weak
    return (acc_student - acc_weak) / gap if gap > 0 else float("nan")
