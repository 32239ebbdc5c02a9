"""Linear pairwise reward heads on fixed features (the ``probe`` regime and the toy world).

A head is a weight vector w [H]; the reward of a text is r(x) = w . phi(x), so a pair's
margin is delta = w . (phi(A) - phi(B)) and a bias would cancel. Training minimises the
paper's losses (:mod:`w2s_helpers.rewards.losses`) plus an L2 penalty, with full-batch Adam
so the explicit-conflict mask is re-evaluated as the head changes.
"""

from __future__ import annotations

from typing import Callable

import torch

from w2s_helpers.rewards import losses


def fit_pairwise_head(
    diff: torch.Tensor,
    label: torch.Tensor,
    l2: float = 1e-2,
    gt_label: torch.Tensor | None = None,
    alpha: float = 0.0,
    steps: int = 300,
    lr: float = 0.05,
    solver: str = "auto",
) -> torch.Tensor:
    """Fit w [H] on feature differences ``diff`` [N, H] = phi(A) - phi(B).

    label:    [N] target probability that A is preferred (hard GT or a weak soft label).
    gt_label: [N] ground truth, needed only for the explicit-conflict term (alpha > 0).

    Without the conflict term the objective (pairwise loss + l2 |w|^2) is convex and is
    solved to convergence by L-BFGS (~20 ms for 2000 x 32). With it, the mask depends on
    the current margins, so the head follows ``steps`` full-batch Adam steps instead, the
    mask re-evaluated at every step as in the paper's training loop. ``solver="adam"``
    forces the Adam path for any alpha, so an alpha sweep compares like with like. Both
    start from zero and use no sampling: same inputs, same head.
    """
    if solver not in ("auto", "adam"):
        raise ValueError(f"solver must be 'auto' or 'adam', got {solver!r}")
    if alpha and gt_label is None:
        raise ValueError("the explicit-conflict term (alpha > 0) needs gt_label")
    if alpha or solver == "adam":
        return _adam(diff, label, l2, gt_label, alpha, steps, lr)
    w = torch.zeros(diff.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = losses.pairwise_loss(diff @ w, label) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def fit_head_adam(diff: torch.Tensor, target: Callable[[torch.Tensor, int], torch.Tensor], l2: float = 1e-2,
                  gt_label: torch.Tensor | None = None, alpha: float = 0.0, steps: int = 300,
                  lr: float = 0.05) -> torch.Tensor:
    """w [H] by :func:`fit_pairwise_head`'s Adam path, with a target that may change as the head
    learns: ``target(delta [N], step) -> [N]`` is the label the pairwise loss pulls delta toward at
    that step (no gradient flows through it). A fixed label is ``lambda delta, t: label``; chapter
    5's auxiliary confidence loss mixes the weak label with the head's own hardened predictions."""
    if alpha and gt_label is None:
        raise ValueError("the explicit-conflict term (alpha > 0) needs gt_label")
    return _adam(diff, None, l2, gt_label, alpha, steps, lr, target=target)


def trace_adam(diff: torch.Tensor, label: torch.Tensor, l2: float = 1e-2, gt_label: torch.Tensor | None = None,
               alpha: float = 0.0, steps: int = 300, lr: float = 0.05, every: int = 10,
               watch: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
               ) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """:func:`fit_pairwise_head`'s Adam path (the same w [H]), with a record every ``every`` steps
    and at the last: "step", "loss" (the training objective: pairwise loss, the explicit term,
    the L2 penalty) and, for each ``watch[name] = (diff [M, H], chosen_first [M] bool)``, the
    head's accuracy on those pairs, "accuracy <name>" (right: delta > 0 where chosen_first)."""
    if alpha and gt_label is None:
        raise ValueError("the explicit-conflict term (alpha > 0) needs gt_label")
    history: dict[str, list[float]] = {"step": [], "loss": []}
    for name in watch or {}:
        history[f"accuracy {name}"] = []

    def record(t, w):
        if t % every and t != steps:
            return
        delta = diff @ w
        fit = losses.explicit_conflict_loss(delta, label, gt_label, alpha) if alpha else losses.pairwise_loss(delta, label)
        loss = fit + l2 * float((w**2).sum())
        history["step"].append(t)
        history["loss"].append(float(loss))
        for name, (x, first) in (watch or {}).items():
            history[f"accuracy {name}"].append(float(((x @ w > 0) == first.bool()).float().mean()))

    return _adam(diff, label, l2, gt_label, alpha, steps, lr, on_step=record), history


def _adam(diff, label, l2, gt_label, alpha, steps, lr, betas=(0.9, 0.999), eps=1e-8, target=None,
          on_step=None) -> torch.Tensor:
    """Full-batch Adam on the pairwise objective with the gradient written out.

    d/d delta of BCE(sigma(delta), y) is sigma(delta) - y, so with g_i the per-pair derivative
    (plus alpha * m_i * (sigma(delta_i) - (1 - y_i)) for the explicit term, mask detached)
    grad_w = diff^T g / N + 2 * l2 * w. Same updates as ``torch.optim.Adam`` (tested), without
    autograd's per-step overhead: 30-50x faster for the course's small heads.
    """
    b1, b2 = betas
    n = len(diff)
    w = torch.zeros(diff.shape[1], dtype=diff.dtype)
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t in range(1, steps + 1):
        delta = diff @ w
        p = torch.sigmoid(delta)
        g = p - (label if target is None else target(delta, t))
        if alpha:
            mask = ((delta >= 0).to(diff.dtype) != gt_label).to(diff.dtype)
            g = g + alpha * mask * (p - (1 - gt_label))
        grad = diff.T @ g / n + 2 * l2 * w
        m.mul_(b1).add_(grad, alpha=1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (v.sqrt() / (1 - b2**t) ** 0.5).add_(eps)
        w.addcdiv_(m, denom, value=-lr / (1 - b1**t))
        if on_step is not None:
            on_step(t, w)
    return w


def choose_l2(
    diff: torch.Tensor, label: torch.Tensor, grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0), folds: int = 5,
    seed: int = 0, steps: int = 300,
) -> float:
    """The L2 penalty with the lowest held-out pairwise loss by k-fold cross-validation.

    diff: [N, H] feature differences; label: [N] targets. Only training pairs are used.
    """
    fold = torch.randperm(len(diff), generator=torch.Generator().manual_seed(seed)) % folds
    scores = {}
    for l2 in grid:
        total = 0.0
        for k in range(folds):
            fit, val = fold != k, fold == k
            w = fit_pairwise_head(diff[fit], label[fit], l2=l2, steps=steps)
            total += losses.pairwise_loss(diff[val] @ w, label[val]).item() / folds
        scores[l2] = total
    return min(scores, key=scores.get)


def slot_order(phi_chosen: torch.Tensor, phi_rejected: torch.Tensor, seed: int):
    """Random slot order per pair: returns phi_A, phi_B [N, H] and label [N] (1 = A is chosen)."""
    g = torch.Generator().manual_seed(seed)
    swap = torch.rand(len(phi_chosen), generator=g) < 0.5
    phi_a = torch.where(swap[:, None], phi_rejected, phi_chosen)
    phi_b = torch.where(swap[:, None], phi_chosen, phi_rejected)
    return phi_a, phi_b, (~swap).float()


def weak_soft_labels(
    w_weak: torch.Tensor, weak_chosen: torch.Tensor, weak_rejected: torch.Tensor,
    strong_chosen: torch.Tensor, strong_rejected: torch.Tensor, seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's inputs and targets (reference for exercise 1.2).

    w_weak: [H_w] weak head; weak_*: [N, H_w] weak features; strong_*: [N, H_s] strong
    features. Returns (strong_diff [N, H_s], soft_label [N] = sigma(delta_weak)) in one
    shared random slot order.
    """
    wa, wb, _ = slot_order(weak_chosen, weak_rejected, seed)
    sa, sb, _ = slot_order(strong_chosen, strong_rejected, seed)
    return sa - sb, torch.sigmoid((wa - wb) @ w_weak)


def pgr(acc_weak: float, acc_student: float, acc_strong: float) -> float:
    """Performance gap recovered (Burns et al. 2023):
    (acc_student - acc_weak) / (acc_strong - acc_weak); NaN unless acc_strong > acc_weak."""
    gap = acc_strong - acc_weak
    return (acc_student - acc_weak) / gap if gap > 0 else float("nan")
