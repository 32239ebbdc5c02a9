"""Preference-optimisation losses of the paper's second scenario (PAPER.md section 5).

Reference implementations on precomputed log-probabilities, for chapter 4's exercises and
checks. All inputs are [N] tensors, one entry per pair:

- summed log-probs (DPO): log pi(y | x) summed over the response tokens;
- mean log-probs (SimPO): the same divided by the response length.

The explicit conflict is per-example and conditional: when the policy currently prefers the
ground-truth harmful response (by the scenario's own correctness rule), alpha times a loss
that prefers the harmful response is added. The mask carries no gradient.

``weak_label`` [N] bool is the weak policy's hard label of each pair: True where it prefers
the harmless (ground-truth chosen) response.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_loss_per_pair(pi_chosen: torch.Tensor, pi_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                      ref_rejected: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """DPO (Rafailov et al. 2023), [N]: -log sigma(beta * ((pi_c - ref_c) - (pi_r - ref_r)))
    on summed log-probs of the policy and the frozen reference (the SFT copy)."""
    return -F.logsigmoid(beta * ((pi_chosen - ref_chosen) - (pi_rejected - ref_rejected)))


def simpo_loss_per_pair(avg_chosen: torch.Tensor, avg_rejected: torch.Tensor, beta: float = 2.0,
                        gamma: float = 1.0) -> torch.Tensor:
    """SimPO (Meng et al. 2024), [N]: -log sigma(beta * (avg_c - avg_r) - gamma) on mean
    per-token log-probs; no reference model, a target margin gamma."""
    return -F.logsigmoid(beta * (avg_chosen - avg_rejected) - gamma)


def _orient(weak_label: torch.Tensor, harmless: torch.Tensor, harmful: torch.Tensor):
    """(chosen, rejected) in the weak label's order: harmless first where ``weak_label`` is True."""
    keep = weak_label.bool()
    return torch.where(keep, harmless, harmful), torch.where(keep, harmful, harmless)


def dpo_explicit_loss(pi_harmless, pi_harmful, ref_harmless, ref_harmful, weak_label,
                      alpha: float, beta: float = 0.1) -> torch.Tensor:
    """The explicit-conflict DPO loss, mean over the batch.

    loss_i = DPO(weak order)_i + alpha * m_i * DPO(harmful chosen)_i,
    m_i = 1 iff the policy now prefers the harmful response: pi_harmful > pi_harmless
    (summed log-probs, the DPO scenario's correctness rule), no gradient.
    """
    c_pi, r_pi = _orient(weak_label, pi_harmless, pi_harmful)
    c_ref, r_ref = _orient(weak_label, ref_harmless, ref_harmful)
    base = dpo_loss_per_pair(c_pi, r_pi, c_ref, r_ref, beta)
    if not alpha:
        return base.mean()
    mask = (pi_harmful > pi_harmless).float().detach()
    extra = dpo_loss_per_pair(pi_harmful, pi_harmless, ref_harmful, ref_harmless, beta)
    return (base + alpha * mask * extra).mean()


def simpo_explicit_loss(avg_harmless, avg_harmful, weak_label, alpha: float, beta: float = 2.0,
                        gamma: float = 1.0) -> torch.Tensor:
    """The explicit-conflict SimPO loss, mean over the batch; the mask compares mean log-probs
    (the SimPO scenario's correctness rule)."""
    c, r = _orient(weak_label, avg_harmless, avg_harmful)
    base = simpo_loss_per_pair(c, r, beta, gamma)
    if not alpha:
        return base.mean()
    mask = (avg_harmful > avg_harmless).float().detach()
    return (base + alpha * mask * simpo_loss_per_pair(avg_harmful, avg_harmless, beta, gamma)).mean()
