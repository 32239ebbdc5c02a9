"""What chapter 3's scoring of a whole grid costs, vectorised against a per-resample loop.

    python bench/bench_metrics.py [--profile laptop] [--n-boot 1000]

The grid is the profile's: every weak <= strong pair of the ladder x chapter 2's conflict
settings + the noise-floor twin x seeds, N = the profile's test pairs. The vectors are
synthetic (random, with realistic accuracies) so the benchmark needs no saved runs; the cost
does not depend on their values. Both versions compute every score of
``scores.SCORES`` with ``n_boot`` bootstrap resamples:

vectorised   scores.summarise: pairs as a count table over 16 x 4 categories, every
             resample one bincount, every score a few array ops on [n_boot, ...] counts
loop         the same scores called once per resample on 1-D vectors (the naive way)

The loop is timed on a few comparisons and scaled to the grid. Prints seconds and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="laptop")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--loop-sample", type=int, default=3, help="comparisons timed for the loop version")
    args = ap.parse_args()

    from w2s_helpers.core import profiles
    from w2s_helpers.deception import scores

    P = profiles.get(args.profile)
    n = P.n_test or 4000
    k = len(P.ladder)
    n_settings = 3 + 3 + 1  # explicit alpha in (0.25, 0.5, 1), implicit shares (up to 3), the twin
    comparisons = k * (k + 1) // 2 * n_settings * len(P.seeds)
    rng = np.random.default_rng(0)

    def one() -> tuple[np.ndarray, ...]:
        a_w, a_s = rng.random(n) < 0.62, rng.random(n) < 0.68
        a_nc = np.where(rng.random(n) < 0.7, a_s, a_w)
        a_c = np.where(rng.random(n) < 0.9, a_nc, ~a_nc)
        return a_w, a_s, a_nc, a_c, rng.normal(size=n)

    grid = [one() for _ in range(comparisons)]
    t0 = time.perf_counter()
    for i, v in enumerate(grid):
        scores.summarise(*v, n_boot=args.n_boot, seed=i)
    t_vec = time.perf_counter() - t0

    def loop(v, seed):
        idx = np.random.default_rng(seed).integers(0, n, size=(args.n_boot, n))
        for fn in scores.SCORES.values():
            vals = [fn(*(x[i] for x in v)) for i in idx]
            np.nanpercentile(np.asarray(vals, dtype=float), [2.5, 97.5])

    sample = grid[: args.loop_sample]
    t0 = time.perf_counter()
    for i, v in enumerate(sample):
        loop(v, i)
    t_loop = (time.perf_counter() - t0) / len(sample) * comparisons

    print(f"profile {P.name}: {comparisons} comparisons, N = {n} test pairs, {len(scores.SCORES)} scores, "
          f"{args.n_boot} bootstrap resamples each")
    print(f"vectorised (scores.summarise): {t_vec:8.2f} s for the grid ({t_vec / comparisons * 1000:.0f} ms per comparison)")
    print(f"per-resample loop             : {t_loop:8.2f} s (timed on {len(sample)}, scaled)   ratio {t_loop / t_vec:.0f}x")


if __name__ == "__main__":
    main()
