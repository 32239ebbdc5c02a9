"""Bootstrapping through an intermediate model (the paper's claim 3; PAPER.md section 6).

The authors' scripts chain three models: the weak ceiling W (trained on D_gt) labels D_w2s; an
intermediate I learns W's soft labels of D_w2s, with no conflict; I then labels D_gt, and the strong
student S trains on I's labels of D_gt, the conflict applied in this last stage only. The knowledge
regions stay those of the original W (the human proxy) and the ground-truth strong ceiling.

S then trains on other inputs (D_gt) than the direct W -> S student (D_w2s). The course separates
the two changes with a second control, W's own labels of D_gt (:func:`direct_labels`): chain
against that control is the effect of the intermediate alone.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch


class RewardLab(Protocol):
    """What the chain needs of a reward lab (:class:`w2s_helpers.rewards.lab.Lab` has it)."""

    def fit(self, rung: str, parts: Sequence, seed: int, alpha: float = 0.0, **kw): ...

    def margins(self, fitted, pool: str = "test") -> torch.Tensor: ...


def soft_labels(lab: RewardLab, model, pool: str, idx: torch.Tensor) -> torch.Tensor:
    """[len(idx)] sigma(delta) of a fitted reward model on pairs ``idx`` of ``pool``: its P(chosen
    preferred), the soft label a student learns from."""
    return torch.sigmoid(lab.margins(model, pool)[idx])


def chain_labels(lab: RewardLab, weak, mid_rung: str, seed: int, w2s_idx: torch.Tensor,
                 gt_idx: torch.Tensor) -> tuple[object, torch.Tensor]:
    """(intermediate, labels [len(gt_idx)]): the chain's labelling step.

    weak:     the fitted weak ceiling W; w2s_idx: the D_w2s pairs the intermediate learns on;
    gt_idx:   the D_gt pairs it then labels for the strong student.
    The intermediate is fitted like every student (``solver="adam"``, no conflict)."""
    mid = lab.fit(mid_rung, [("w2s", w2s_idx, soft_labels(lab, weak, "w2s", w2s_idx))], seed=seed,
                  solver="adam", score=("gt", "test"))
    return mid, soft_labels(lab, mid, "gt", gt_idx)


def direct_labels(lab: RewardLab, weak, gt_idx: torch.Tensor) -> torch.Tensor:
    """[len(gt_idx)] W's own soft labels of the D_gt pairs the chain's student trains on: the
    input-matched control (same inputs as the chain, no intermediate). W trained on a share of
    D_gt, so on those pairs its labels are in-sample; the chapter says how many."""
    return soft_labels(lab, weak, "gt", gt_idx)
