"""Uncertainty for accuracies and scores: vectorised bootstrap and binomial intervals."""

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
