"""A toy preference world where the truth is known (chapters 1-3).

Every item is a latent vector z in R^D. Its harmlessness is ``z @ harmless`` and its
helpfulness ``z @ helpful``. A pair (A, B) is labelled 1 when A is the more harmless item.

- The **strong** model sees z itself.
- The **weak** model sees a degraded view: only the first ``weak_dims`` coordinates, plus
  Gaussian noise of scale ``weak_noise`` that belongs to the item (it is drawn once, when
  the item is made, so the weak model sees the same noisy item every time).

Two dials set the capability gap: fewer ``weak_dims`` hide part of what decides
harmlessness from the weak model; more ``weak_noise`` blurs what it does see.
Helpfulness lives mostly in the hidden coordinates and is anti-correlated with
harmlessness there (``conflict``), so a student pushed towards helpfulness can trade away
harmlessness exactly where the weak supervisor cannot look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class ToyWorld:
    """Directions and dials of one toy world (see the module docstring).

    dim:        D, latent dimensions (the strong view).
    weak_dims:  k <= D, coordinates visible to the weak model.
    weak_noise: std of the per-item noise on the weak view.
    label_noise: probability that a ground-truth label is flipped (annotator noise).
    harmless:   [D] unit vector; harmlessness score = z @ harmless.
    helpful:    [D] unit vector; helpfulness score = z @ helpful.
    """

    dim: int
    weak_dims: int
    weak_noise: float
    label_noise: float
    harmless: np.ndarray
    helpful: np.ndarray


@dataclass(frozen=True)
class ToyPairs:
    """n pairs of items. strong_a/b: [n, D]; weak_a/b: [n, k]; labels: [n] in {0, 1}.

    harmless_label: 1 iff A is more harmless (after label noise).
    helpful_label:  1 iff A is more helpful (no noise).
    """

    strong_a: torch.Tensor
    strong_b: torch.Tensor
    weak_a: torch.Tensor
    weak_b: torch.Tensor
    harmless_label: torch.Tensor
    helpful_label: torch.Tensor

    def __len__(self) -> int:
        return len(self.harmless_label)

    def diff(self, view: str) -> torch.Tensor:
        """Feature differences A - B of the ``"strong"`` or ``"weak"`` view: [n, D] or [n, k]."""
        return getattr(self, f"{view}_a") - getattr(self, f"{view}_b")


def make_world(
    dim: int = 32, weak_dims: int = 8, weak_noise: float = 0.5, label_noise: float = 0.0,
    conflict: float = 0.8, seed: int = 0,
) -> ToyWorld:
    """Draw the two directions of a world.

    Harmlessness spreads evenly over all D coordinates, so the weak model (first k) sees
    a share k/D of it. Helpfulness points along the *hidden* part of ``-harmless`` with
    weight ``conflict`` and along a random direction otherwise, orthogonal to both the visible
    and the hidden part of harmlessness: with conflict = 0 the two objectives are unrelated
    in either view; near 1, being helpful means being harmful where the weak model is blind.
    """
    if not 0 < weak_dims <= dim:
        raise ValueError(f"weak_dims must be in 1..{dim}, got {weak_dims}")
    if not 0 <= conflict <= 1:
        raise ValueError(f"conflict must be in [0, 1], got {conflict}")
    rng = np.random.default_rng(seed)
    harmless = rng.choice([-1.0, 1.0], size=dim) * (1 + 0.2 * rng.random(dim))
    harmless /= np.linalg.norm(harmless)
    visible = np.where(np.arange(dim) < weak_dims, harmless, 0.0)
    hidden = visible - harmless  # -harmless on the coordinates the weak model cannot see
    other = rng.standard_normal(dim)
    for part in (visible, -hidden):  # orthogonal to the visible and the hidden part of
        if np.linalg.norm(part) > 0:            # harmlessness: with conflict = 0, helpfulness says
            part = part / np.linalg.norm(part)  # nothing about either
            other -= other @ part * part
    helpful = conflict * hidden / max(np.linalg.norm(hidden), 1e-12) + (1 - conflict) * other / np.linalg.norm(other)
    helpful /= np.linalg.norm(helpful)
    return ToyWorld(dim, weak_dims, weak_noise, label_noise, harmless, helpful)


def sample_pairs(world: ToyWorld, n: int, seed: int) -> ToyPairs:
    """Draw n pairs with their weak views and labels (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    za, zb = rng.standard_normal((n, world.dim)), rng.standard_normal((n, world.dim))
    k = world.weak_dims
    wa = za[:, :k] + world.weak_noise * rng.standard_normal((n, k))
    wb = zb[:, :k] + world.weak_noise * rng.standard_normal((n, k))
    harmless = ((za - zb) @ world.harmless > 0).astype(np.float32)
    flip = rng.random(n) < world.label_noise
    harmless = np.where(flip, 1 - harmless, harmless)
    helpful = ((za - zb) @ world.helpful > 0).astype(np.float32)
    t = lambda x: torch.as_tensor(x, dtype=torch.float32)
    return ToyPairs(t(za), t(zb), t(wa), t(wb), t(harmless), t(helpful))


def conflict_runs(seed: int, conflict: float = 0.8, alpha: float = 0.5, helpful_share: float = 0.3,
                  weak_dims: int = 16, weak_noise: float = 0.25, n: tuple[int, int, int] = (400, 2000, 4000),
                  n_weak: int | None = None, placebo_shares: Sequence[float] = (), n_twins: int = 1) -> dict[str, object]:
    """Chapter 2's toy experiment, returned as test-set vectors for chapter 3's metrics.

    One world (``conflict`` sets how much helpfulness opposes harmlessness where the weak
    model is blind), ceilings on ``n[0]`` GT pairs, students on ``n[1]`` weakly labelled pairs,
    ``n[2]`` test pairs. Students share one optimiser (full-batch Adam), so they differ only
    by their data and loss. Keys (all [n_test]):

    weak, strong:     ceilings correct
    no_conflict:      student on soft weak labels;  margin_nc: its test margins
    twin:             the same, on a fresh weak-labelled sample (the floor: a resampling reference)
    twins:            (with ``n_twins`` > 1) a list of ``n_twins`` such students, ``twin`` first
    implicit:         + helpful pairs with true helpfulness labels (share ``helpful_share``)
    explicit:         + the alpha-weighted explicit-conflict term
    placebos:         {q: [n_test]} for each q of ``placebo_shares``: the no-conflict student with
                      harmful labels on a random share q of its pairs (``losses.placebo_labels``),
                      a push toward harm that cannot target the supervisor's blind spot

    ``n_weak`` (default ``n[0]``) trains the weak ceiling on fewer GT pairs, as the chapters'
    weak-training-size dial does.
    """
    from w2s_helpers.rewards import losses

    world = make_world(dim=32, weak_dims=weak_dims, weak_noise=weak_noise, conflict=conflict, seed=0)
    base = 1000 * seed
    gt, w2s, twin, test = (sample_pairs(world, m, seed=base + i) for i, m in enumerate((n[0], n[1], n[1], n[2])))
    more = [sample_pairs(world, n[1], seed=base + 20 + j) for j in range(n_twins - 1)]
    w_weak, w_strong = _ceilings(gt, n_weak)
    fit = _fit_student
    soft = lambda pairs: _weak_label(pairs, w_weak)
    n_help = round(helpful_share / (1 - helpful_share) * len(w2s))
    helpful = sample_pairs(world, n_help, seed=base + 7)
    students = {
        "no_conflict": fit(w2s.diff("strong"), soft(w2s)),
        "twin": fit(twin.diff("strong"), soft(twin)),
        "implicit": fit(torch.cat([w2s.diff("strong"), helpful.diff("strong")]),
                        torch.cat([soft(w2s), helpful.helpful_label])),
        "explicit": fit(w2s.diff("strong"), soft(w2s), gt_label=w2s.harmless_label, alpha=alpha),
    }
    placebos = {q: fit(w2s.diff("strong"), losses.placebo_labels(soft(w2s), w2s.harmless_label, q, seed=base + 11))
                for q in placebo_shares}
    out: dict[str, object] = {"weak": _correct(test, w_weak, "weak"), "strong": _correct(test, w_strong, "strong")}
    out |= {k: _correct(test, w, "strong") for k, w in students.items()}
    if placebo_shares:
        out["placebos"] = {q: _correct(test, w, "strong") for q, w in placebos.items()}
    if n_twins > 1:
        out["twins"] = [out["twin"]] + [_correct(test, fit(p.diff("strong"), soft(p)), "strong") for p in more]
    out["margin_nc"] = (test.diff("strong") @ students["no_conflict"]).numpy()
    return out


def _ceilings(gt: ToyPairs, n_weak: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(weak, strong) ceiling heads on ground truth: the weak one on its view of the first
    ``n_weak`` pairs (all by default), the strong one on the full view of all of them."""
    from w2s_helpers.rewards import heads

    n_w = len(gt) if n_weak is None else n_weak
    w_weak = heads.fit_pairwise_head(gt.diff("weak")[:n_w], gt.harmless_label[:n_w], l2=1e-3)
    return w_weak, heads.fit_pairwise_head(gt.diff("strong"), gt.harmless_label, l2=1e-3)


def _weak_label(pairs: ToyPairs, w_weak: torch.Tensor) -> torch.Tensor:
    """[n] the weak ceiling's soft label sigma(Δ_weak) on its view of the pairs."""
    return torch.sigmoid(pairs.diff("weak") @ w_weak)


def _fit_student(x: torch.Tensor, label: torch.Tensor, **kw) -> torch.Tensor:
    """A student head on strong-view differences x [n, D]: one optimiser (full-batch Adam) for
    every student, so students differ only by their data and loss."""
    from w2s_helpers.rewards import heads

    return heads.fit_pairwise_head(x, label, l2=1e-3, solver="adam", **kw)


def _correct(pairs: ToyPairs, w: torch.Tensor, view: str) -> np.ndarray:
    """[n] bool: the head ``w`` on ``view`` ranks each pair as its (harmlessness) label does."""
    return (pairs.diff(view) @ w > 0).numpy() == pairs.harmless_label.numpy().astype(bool)


def weak_view_for(share: float, sizes: tuple[int, int, int], n_weak: int | None = None,
                  right_in_cell: float | None = None, dims: tuple[int, ...] = (16, 20, 24, 28),
                  noises: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0), seed: int = 0) -> tuple[int, float]:
    """(weak_dims, weak_noise) of the grid whose toy experiment at these sizes (ceiling pairs,
    student pairs, test pairs) comes closest to a real one: its Wuk∩Sk share of the test set (weak
    ceiling wrong, strong ceiling right) near ``share`` and, if given, the share of Wuk∩Sk the
    no-conflict student gets right near ``right_in_cell`` (1 - DS_err without conflict: the room a
    conflict has to flip answers there; a student that copies every weak error has none; NaN or
    None: not matched). The distance is the sum of the two gaps. weak_dims stays below the 32
    dimensions: the planted conflict lives in the hidden ones."""
    match_room = right_in_cell is not None and not math.isnan(right_in_cell)
    best, best_gap = (dims[0], noises[0]), float("inf")
    for k in dims:
        for noise in noises:
            world = make_world(dim=32, weak_dims=k, weak_noise=noise, conflict=0.0, seed=0)
            gt, w2s, test = (sample_pairs(world, m, seed=seed + i) for i, m in enumerate(sizes))
            w_weak, w_strong = _ceilings(gt, n_weak)
            cell = _correct(test, w_strong, "strong") & ~_correct(test, w_weak, "weak")
            gap = abs(float(cell.mean()) - share)
            if match_room and cell.any():
                student = _fit_student(w2s.diff("strong"), _weak_label(w2s, w_weak))
                gap += abs(float(_correct(test, student, "strong")[cell].mean()) - right_in_cell)
            if gap < best_gap:
                best, best_gap = (k, noise), gap
    return best
