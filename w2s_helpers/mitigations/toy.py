"""Chapter 5's toy world: three capacity levels and a planted conflict, where the answer is known.

Chapter 2's world (:mod:`w2s_helpers.rewards.toy`): 32 latent coordinates; the weak model sees
the first 16 with noise; the **intermediate** sees the first ``mid_dims`` without noise; the strong
model sees all 32. With ``conflict`` > 0 helpfulness opposes harmlessness in the coordinates the
weak model cannot see (a planted conflict); with 0 it is unrelated.

Every pipeline trains the strong student in the three settings (no conflict, implicit, explicit)
on its own data, with the optimiser of chapters 2-3 (full-batch Adam), so pipelines differ only
by their data and loss. Sizes default to the paper's design: D_gt and D_w2s equal, the weak
ceiling on a share of D_gt (``n_weak``), as the chapters' weak supervisors are.
"""

from __future__ import annotations

import numpy as np
import torch

from w2s_helpers.mitigations import confidence, filtering
from w2s_helpers.rewards import heads
from w2s_helpers.rewards import toy as world_toy

PIPELINES = ("direct", "direct on D_gt", "chain", "filter oracle", "filter confidence", "random subset (oracle size)",
             "random subset (confidence size)", "aux confidence")


def _mid(pairs: world_toy.ToyPairs, dims: int) -> torch.Tensor:
    """[n, dims] the intermediate's view of pair differences: the first ``dims`` coordinates."""
    return pairs.strong_a[:, :dims] - pairs.strong_b[:, :dims]


def _correct(diff: torch.Tensor, w: torch.Tensor, label: torch.Tensor) -> np.ndarray:
    return ((diff @ w > 0).float() == label).numpy()


def mitigation_runs(seed: int, conflict: float = 0.8, alpha: float = 0.5, helpful_share: float = 0.3,
                    mid_dims: int = 24, n: tuple[int, int, int] = (1000, 1000, 4000), n_weak: int = 200,
                    threshold: float = 0.75, beta: float = 0.5) -> dict[str, object]:
    """Test-set vectors of every pipeline in one toy world (all bool [n_test] unless said).

    weak, strong:  ceilings (weak on its view of the first ``n_weak`` D_gt pairs, strong on all)
    mid:           the intermediate's accuracy on the test pairs (float)
    floor:         a second direct no-conflict student on a fresh weak-labelled sample
    runs:          {pipeline: {"no_conflict", "implicit", "explicit": bool [n_test]}}
    kept:          {pipeline: training pairs it kept}, correct_kept: {pipeline: share of its
                   hardened labels that are right}
    """
    world = world_toy.make_world(dim=32, weak_dims=16, weak_noise=0.25, conflict=conflict, seed=0)
    base = 1000 * seed
    sizes = (n[0], n[1], n[1], n[2])
    gt, w2s, twin, test = (world_toy.sample_pairs(world, m, seed=base + i) for i, m in enumerate(sizes))
    n_help = max(1, filtering.helpful_count(max(n[0], n[1]), helpful_share))
    helpful = world_toy.sample_pairs(world, n_help, seed=base + 7)
    w_weak = heads.fit_pairwise_head(gt.diff("weak")[:n_weak], gt.harmless_label[:n_weak], l2=1e-3)
    w_strong = heads.fit_pairwise_head(gt.diff("strong"), gt.harmless_label, l2=1e-3)
    soft = lambda pairs: torch.sigmoid(pairs.diff("weak") @ w_weak)
    p_w2s = soft(w2s)
    w_mid = heads.fit_pairwise_head(_mid(w2s, mid_dims), p_w2s, l2=1e-3, solver="adam")   # learns W's labels
    p_chain = torch.sigmoid(_mid(gt, mid_dims) @ w_mid)                                  # and labels D_gt
    data = {   # pipeline -> (strong-view differences, soft labels, ground truth) of its training pairs
        "direct": (w2s.diff("strong"), p_w2s, w2s.harmless_label),
        "direct on D_gt": (gt.diff("strong"), soft(gt), gt.harmless_label),
        "chain": (gt.diff("strong"), p_chain, gt.harmless_label),
        "aux confidence": (w2s.diff("strong"), p_w2s, w2s.harmless_label),
    }
    for variant in filtering.VARIANTS:
        keep = filtering.keep_mask(p_w2s, threshold, variant, gt_label=w2s.harmless_label)
        data[f"filter {variant}"] = (w2s.diff("strong")[keep], p_w2s[keep], w2s.harmless_label[keep])
        pick = filtering.same_size_subset(len(w2s), int(keep.sum()), seed=base + 13)      # its size control
        data[f"random subset ({variant} size)"] = (w2s.diff("strong")[pick], p_w2s[pick], w2s.harmless_label[pick])

    def fit(name, x, y, gt_label, setting):
        if setting == "implicit":
            k = filtering.helpful_count(len(x), helpful_share, available=len(helpful))
            x, y = torch.cat([x, helpful.diff("strong")[:k]]), torch.cat([y, helpful.helpful_label[:k]])
            gt_label = None
        a = alpha if setting == "explicit" else 0.0
        if name == "aux confidence":
            return heads.fit_head_adam(x, confidence.aux_target(y, beta, 300), l2=1e-3,
                                       gt_label=gt_label if a else None, alpha=a)
        return heads.fit_pairwise_head(x, y, l2=1e-3, solver="adam", gt_label=gt_label if a else None, alpha=a)

    x_test, y_test = test.diff("strong"), test.harmless_label
    settings = ("no_conflict", "implicit", "explicit")
    runs = {name: {s: _correct(x_test, fit(name, *data[name], s), y_test) for s in settings}
            if len(data[name][0]) else {} for name in PIPELINES}
    floor = _correct(x_test, heads.fit_pairwise_head(twin.diff("strong"), soft(twin), l2=1e-3, solver="adam"), y_test)
    return {"weak": _correct(test.diff("weak"), w_weak, y_test), "strong": _correct(x_test, w_strong, y_test),
            "mid": float(_correct(_mid(test, mid_dims), w_mid, y_test).mean()), "floor": floor, "runs": runs,
            "kept": {k: len(v[0]) for k, v in data.items()},
            "correct_kept": {k: float(((v[1] > 0.5).float() == v[2]).float().mean()) if len(v[0]) else float("nan")
                             for k, v in data.items()}}
