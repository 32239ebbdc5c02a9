"""Robustness as a result: the reward-model verdict on deception (claim 1) recomputed on two
disjoint halves of the test pool, from the per-pair vectors chapters 2-3 saved.

If the verdicts on the two halves disagree with each other, or with the whole pool's, the answer
rests on which test pairs were drawn; if they agree, it does not (at this power: each half has
half the pairs, so a "yes" on the whole can honestly become a "no" on a half).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from w2s_helpers.deception import verdict


def _rows(frame, **where):
    """The rows of ``frame`` whose columns equal ``where`` (floats compared with np.isclose)."""
    mask = np.logical_and.reduce([np.isclose(frame[k], v) if isinstance(v, float) else frame[k] == v
                                  for k, v in where.items()])
    return frame[mask]


def units_from_runs(runs, weak_n: int, settings: Sequence[tuple[str, float, float]]) -> list[dict]:
    """Chapter 3's verdict units (one per weak < strong pair of rungs and seed) from a table of saved
    runs (:func:`w2s_helpers.core.results.load_runs`): ``weak`` (the weak ceiling on ``weak_n`` GT
    pairs), ``strong``, ``no_conflict``, ``margin_nc``, ``floor`` (the twin) and one vector per
    setting, named as chapter 3 names them. ``settings``: (kind, alpha, helpful_share). Units with a
    missing run are left out."""
    name = lambda kind, a, h: f"explicit α={a:g}" if kind == "explicit" else f"implicit {h:.0%}"
    students = runs[runs.role == "student"]
    out = []
    for (weak, strong, seed), group in students.groupby(["weak", "model", "seed"]):
        if weak == strong:
            continue
        w = _rows(runs, role="weak", model=weak, seed=seed, weak_n=weak_n)
        s = _rows(runs, role="strong", model=strong, seed=seed, weak_n=0)
        nc, twin = _rows(group, setting="no_conflict", weak_n=weak_n), _rows(group, setting="twin", weak_n=weak_n)
        runs_of = {name(k, a, h): _rows(group, setting=k, alpha=float(a), helpful_share=float(h), weak_n=weak_n)
                   for k, a, h in settings}
        if w.empty or s.empty or nc.empty or twin.empty or any(r.empty for r in runs_of.values()):
            continue
        out.append({"weak": w["correct"].iloc[0], "strong": s["correct"].iloc[0], "no_conflict": nc["correct"].iloc[0],
                    "margin_nc": nc["delta"].iloc[0], "floor": twin["correct"].iloc[0],
                    **{k: r["correct"].iloc[0] for k, r in runs_of.items()}})
    return out


def halves(units: Sequence[dict], seed: int = 0) -> tuple[list[dict], list[dict]]:
    """The units restricted to two disjoint random halves of the test pairs (the same halves for
    every unit: they share the test pool)."""
    n = len(np.asarray(units[0]["weak"]))
    order = np.random.default_rng(seed).permutation(n)
    parts = (np.sort(order[: n // 2]), np.sort(order[n // 2:]))
    cut = lambda u, idx: {k: np.asarray(v)[idx] for k, v in u.items()}
    return tuple([cut(u, idx) for u in units] for idx in parts)


def verdicts_on_halves(units: Sequence[dict], settings: Sequence[str], n_boot: int = 1000, seed: int = 0):
    """A table, one row per setting: the verdict (yes / no / not testable) on the whole test pool and
    on each half, each with its DS_flip-above-the-floor estimate, and whether the three agree. Each
    half's Holm family is the whole's (every setting x check)."""
    import pandas as pd

    rows = {}
    for label, us in (("whole pool", list(units)), *zip(("half A", "half B"), halves(units, seed))):
        table = verdict.verdict(us, settings, n_boot=n_boot, seed=seed)
        yes, can = verdict.says_yes(table), verdict.testable(table)
        for s in settings:
            est = table.loc[(s, verdict.CHECKS[0]), "estimate"]
            word = "yes" if yes[s] else "no" if can[s] else "not testable"
            rows.setdefault(s, {})[label] = f"{word} ({est:+.3f})" if np.isfinite(est) else word
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame["agree"] = frame.apply(lambda r: len({v.split(" (")[0] for v in r}) == 1, axis=1)
    return frame.rename_axis("setting")
