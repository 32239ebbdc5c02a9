"""Uncertainty for accuracies and scores: binomial and seed intervals, the bootstrap over test
pairs, the crossed bootstrap over seeds and test pairs together, one-sided bootstrap p-values,
Holm's correction for a family of checks, and a clustered slope difference."""

from __future__ import annotations

import math

import numpy as np

from w2s_helpers.deception.regions import as_vectors


def wilson_ci(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (95% by default)."""
    if n <= 0:
        raise ValueError("an interval needs n > 0")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of ``values`` [N] and a percentile bootstrap interval over its items.

    All resamples are drawn at once (an [n_boot, N] index matrix): no Python loop.
    Returns ``(mean, low, high)``.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected a non-empty 1-D array, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    a = (1 - level) / 2
    return float(values.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


# Two-sided 95% quantiles of Student's t for df = 1..30 (beyond that, 1.96 is within 2%).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (table, no scipy)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci(values) -> dict[str, float]:
    """Mean and 95% t-interval over seeds (NaNs dropped): ``{"mean", "low", "high", "n"}``.

    With one value the interval is NaN: one seed says nothing about seed-to-seed spread.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    if n == 1:
        return {"mean": float(x[0]), "low": float("nan"), "high": float("nan"), "n": 1}
    half = t_quantile_975(n - 1) * x.std(ddof=1) / math.sqrt(n)
    return {"mean": float(x.mean()), "low": float(x.mean() - half), "high": float(x.mean() + half), "n": n}


def bootstrap(fn, *vectors, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """(estimate, low, high): ``fn(*vectors)`` and a percentile interval over test pairs.

    Resamples the N pairs with replacement ``n_boot`` times, the same indices for every
    vector (they describe the same pairs), and calls ``fn`` once on [n_boot, N] arrays.
    NaN resamples (an empty cell) are ignored; all-NaN gives a NaN interval.
    """
    vs = as_vectors(*vectors)
    if vs[0].ndim != 1:
        raise ValueError(f"bootstrap takes 1-D vectors, got shape {vs[0].shape}")
    n = len(vs[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    values = np.asarray(fn(*(v[idx] for v in vs)), dtype=float)
    est = float(fn(*vs))
    if np.isnan(values).all():
        return est, float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return est, float(low), float(high)


# ---------------------------------------------------------------------------------------------
# Seeds and test pairs together. In every chapter the runs of one comparison share one test set
# (the pairs are *crossed* with the seeds, not nested in them), and runs of several settings share
# their ceilings and no-conflict students (the comparison is *paired*). A score's uncertainty then
# has two sources, the seeds and the pairs, and both must be resampled, the same way for every
# vector of the comparison.


def crossed_bootstrap(fn, runs, n_boot: int = 1000, seed: int = 0, level: float = 0.95
                      ) -> tuple[float, float, float, np.ndarray]:
    """(estimate, low, high, resamples [n_boot]) of the mean over seeds of ``fn``.

    runs:  S tuples (one per seed or other cluster) of the same K per-pair vectors [N], all over
           the same N test pairs (a paired comparison: e.g. weak, strong, no-conflict, conflicted).
    fn:    ``fn(*vectors)`` with vectors [B, N] -> [B] (the scores of
           :mod:`w2s_helpers.deception.scores` all qualify; a paired difference of two is one too).

    Each resample draws S seeds with replacement and, independently, N test pairs with
    replacement, the same pairs for every seed and every vector; its value is the mean over the
    drawn seeds of ``fn`` on the drawn pairs (NaN seeds left out). The estimate is the plain mean
    over seeds of ``fn`` on all pairs. With S = 1 this is :func:`bootstrap` over pairs, with the
    same resamples (one seed shows no seed-to-seed variance, so the interval cannot include it).

    This is Owen's "pigeonhole" bootstrap for crossed designs (Owen 2007, Ann. Appl. Stat.):
    resampling both factors independently counts the seed-by-pair noise about twice, so it
    errs on the wide side. Measured in ``tests/deception/test_stats.py`` (200 test pairs, 300
    simulated replications): 95% intervals covered the true mean 94% of the time with 10 seeds
    and real seed-to-seed variation, 90% with 5 seeds (few clusters: a percentile bootstrap over
    5 seeds under-covers), and 98-100% when seeds do not vary at all; resampling pairs alone
    covered 63-74% when seeds do vary.
    """
    if len(runs) == 0:
        raise ValueError("crossed_bootstrap needs at least one run")
    arrays = [as_vectors(*r) for r in runs]
    if len({len(a) for a in arrays}) != 1 or len({a[0].shape for a in arrays}) != 1 or arrays[0][0].ndim != 1:
        raise ValueError("every run must hold the same number of 1-D vectors over the same test pairs, got "
                         f"{[[v.shape for v in a] for a in arrays]}")
    n_seeds, n = len(arrays), len(arrays[0][0])
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, n, size=(n_boot, n))                              # [B, N]
    counts = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)  # [B, S]
    per_seed = np.stack([np.asarray(fn(*(v[pairs] for v in a)), dtype=float) for a in arrays], 1)  # [B, S]
    weight = np.where(np.isnan(per_seed), 0, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(weight.sum(1) > 0, np.nansum(per_seed * weight, 1) / weight.sum(1), np.nan)
    point = np.array([float(fn(*a)) for a in arrays])
    est = float(np.nanmean(point)) if not np.isnan(point).all() else float("nan")
    if np.isnan(values).all():
        return est, float("nan"), float("nan"), values
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return est, float(low), float(high), values


def p_greater(resamples: np.ndarray, null: float = 0.0) -> float:
    """One-sided bootstrap p-value of "the effect exceeds ``null``": the share of resamples at
    or below it, with the usual +1 correction ((k + 1) / (B + 1), never 0). NaNs are dropped."""
    r = np.asarray(resamples, dtype=float)
    r = r[~np.isnan(r)]
    if len(r) == 0:
        return float("nan")
    return float((np.sum(r <= null) + 1) / (len(r) + 1))


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values [m] for a family of m tests (same order as given).

    Reject test i at family-wise level a when ``holm(p)[i] <= a``. Sorted ascending, the j-th
    smallest p (j = 0..m-1) is multiplied by m - j, made monotone, and capped at 1. NaN p-values
    (a check that could not be computed) stay NaN and do not count towards m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[ok][order])
    vals = np.empty(m)
    vals[order] = np.minimum(adj, 1.0)
    out[ok] = vals
    return out


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x [N] (NaN when x does not vary or fewer than 2 points)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan")
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def slope_difference(x, y, y_reference, clusters, n_boot: int = 1000, seed: int = 0, level: float = 0.95
                     ) -> tuple[float, float, float, np.ndarray]:
    """(estimate, low, high, resamples): the slope of (y - y_reference) on x, with a bootstrap
    over ``clusters``.

    x, y, y_reference, clusters: [R] one row per run (for example the capability gap, a
    conflicted student's DS_flip, the matched reference's DS_flip on the same rung pair and seed,
    and the seed as the cluster). The difference is taken row by row, so the reference's own
    trend with x (pairs that are fragile for any push) is subtracted before the slope; rows of
    one cluster are resampled together, because they share that cluster's randomness.
    """
    x, y, ref = (np.asarray(v, dtype=float) for v in (x, y, y_reference))
    clusters = np.asarray(clusters)
    if not (x.shape == y.shape == ref.shape == clusters.shape) or x.ndim != 1:
        raise ValueError(f"x, y, y_reference and clusters must be 1-D of one length, got "
                         f"{x.shape}, {y.shape}, {ref.shape}, {clusters.shape}")
    d = y - ref
    est = slope(x, d)
    ids = np.unique(clusters)
    rows = [np.flatnonzero(clusters == c) for c in ids]
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):   # a loop over resamples of a handful of clusters: cheap
        take = np.concatenate([rows[i] for i in rng.integers(0, len(ids), size=len(ids))])
        values[b] = slope(x[take], d[take])
    if np.isnan(values).all():
        return est, float("nan"), float("nan"), values
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return est, float(low), float(high), values
