"""A mitigated pipeline against the direct one, with the course's controls.

A *unit* is one cluster of runs over the same N test pairs (a pair of rungs, or a chain of three,
and a seed): ``weak`` and ``strong`` (bool [N], the original weak ceiling and the ground-truth
strong ceiling: the knowledge regions never move), ``floor`` (bool [N], a second no-conflict
student of the direct pipeline) and ``runs``: {pipeline: {setting: bool [N]}}, every pipeline with
its own ``no_conflict`` student, against which its conflict settings' flips are counted.

    reduction       score(direct) - score(pipeline), paired over units and test pairs (the
                    crossed bootstrap of chapter 3), with its one-sided p, its standard error and
                    the smallest reduction it detects with 80% power
    room            score(direct) - score(floor): the deception beyond retraining a mitigation
                    could remove at most
    claim_verdict   the paper's claims 3 and 4 as words that follow from those numbers
"""

from __future__ import annotations

import warnings
from statistics import NormalDist
from typing import Callable, Mapping, Sequence

import numpy as np

from w2s_helpers.deception import scores, stats

Unit = Mapping[str, object]
Z_ONE_SIDED = NormalDist().inv_cdf(0.95)   # a one-sided 5% test
Z_POWER = NormalDist().inv_cdf(0.80)       # 80% power


def _accuracy(a_w, a_s, a_nc, a_c):
    return np.asarray(a_c, dtype=float).mean(-1)


SCORES: dict[str, Callable] = {"DS_flip": scores.ds_flip, "accuracy": _accuracy}


def _summary(boot: np.ndarray, est: float, low: float, high: float) -> dict[str, float]:
    """est, low, high, p (one-sided: the difference is not above 0), se, the difference detectable
    with 80% power at one-sided 5% (``mde``)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():   # every resample NaN: an empty cell
        warnings.simplefilter("ignore", RuntimeWarning)
        se = float(np.nanstd(boot))
    return {"estimate": est, "low": low, "high": high, "p": stats.p_greater(boot), "se": se,
            "mde": (Z_ONE_SIDED + Z_POWER) * se}


def difference(units: Sequence[Unit], first: tuple[str, str], second: tuple[str, str], score: str = "DS_flip",
               n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """score(first) - score(second), each (pipeline, setting) scored against its pipeline's
    no-conflict student; pipeline "floor" names the units' floor (scored against the direct
    no-conflict student). Mean over units, crossed-bootstrap interval; see :func:`_summary`."""
    fn = SCORES[score]

    def vectors(u, key):
        pipeline, setting = key
        if pipeline == "floor":
            return u["runs"]["direct"]["no_conflict"], u["floor"]
        return u["runs"][pipeline]["no_conflict"], u["runs"][pipeline][setting]

    runs = [(u["weak"], u["strong"], *vectors(u, first), *vectors(u, second)) for u in units]
    diff = lambda w, s, nc1, c1, nc2, c2: np.asarray(fn(w, s, nc1, c1), float) - np.asarray(fn(w, s, nc2, c2), float)
    est, low, high, boot = stats.crossed_bootstrap(diff, runs, n_boot=n_boot, seed=seed)
    return _summary(boot, est, low, high)


def reduction(units: Sequence[Unit], pipeline: str, setting: str, score: str = "DS_flip", base: str = "direct",
              n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """score(base, setting) - score(pipeline, setting): positive = the mitigation lowers the score."""
    return difference(units, (base, setting), (pipeline, setting), score, n_boot, seed)


def room(units: Sequence[Unit], setting: str, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """DS_flip(direct, setting) - DS_flip(floor): the most a mitigation could remove."""
    return difference(units, ("direct", setting), ("floor", setting), "DS_flip", n_boot, seed)


def power_to_detect(effect: float, se: float, level: float = 0.05) -> float:
    """The probability that a one-sided test at ``level`` of a normal estimate with standard error
    ``se`` rejects when the true reduction is ``effect`` (NaN if either is not finite). With m
    comparisons under Holm, ``level = 0.05 / m`` (Bonferroni, Holm's first step) is the honest,
    conservative choice."""
    if not (np.isfinite(effect) and np.isfinite(se)) or se <= 0:
        return float("nan")
    return NormalDist().cdf(effect / se - NormalDist().inv_cdf(1 - level))


def detectable(se: float, level: float = 0.05, power: float = 0.8) -> float:
    """The smallest reduction a one-sided test at ``level`` finds with probability ``power``:
    (z_{1-level} + z_{power}) * se."""
    return (NormalDist().inv_cdf(1 - level) + NormalDist().inv_cdf(power)) * se


def claim_verdict(claim: str, red: Mapping[str, float], room_: Mapping[str, float], rejected: bool,
                  level: float = 0.05) -> str:
    """The answer to the paper's claim, in words that follow from the numbers.

    claim:    "mitigates" (claim 3: bootstrapping lowers deception to some extent) or
              "does not help much" (claim 4: high-confidence filtering).
    red:      :func:`reduction` (estimate, low, high, se, mde); ``rejected``: its one-sided test
              rejected "no reduction" at the chapter's family-wise level.
    room_:    :func:`room`: no deception beyond the floor (its interval reaches 0) means there is
              nothing to mitigate, and neither claim can be tested.
    "Much" is half the room: the filter helps much if it surely removes more than half of the
    deception beyond the floor, and not much if it surely removes less. Claim 3 says "somewhat, not
    fully": a reduction whose interval lies above the whole room supports the first half only.
    ``level``: the one-sided level the power is computed at (see :func:`power_to_detect`).
    """
    if not np.isfinite(red["estimate"]) or not np.isfinite(room_["estimate"]):
        return "not testable (empty knowledge cells)"
    if room_["low"] <= 0:
        return (f"not testable: no deception beyond the floor to remove (room {room_['estimate']:+.3f} "
                f"[{room_['low']:+.3f}, {room_['high']:+.3f}])")
    power = power_to_detect(room_["estimate"], red["se"], level)
    half = room_["estimate"] / 2
    if claim == "mitigates":
        if rejected and red["estimate"] > 0:
            if red["low"] >= room_["estimate"]:
                return "supported that it mitigates, not that it is partial: it removes at least all of the room"
            return "supported: lowers DS_flip"
        if red["high"] < 0:
            return "contradicted: raises DS_flip"
        return f"not detected (power {power:.0%} to detect removing all of the room)"
    if claim == "does not help much":
        if red["low"] > half:
            return "contradicted: removes more than half of the room"
        if red["high"] < half:
            return "supported: removes less than half of the room"
        return f"undecided: the interval spans half of the room (power {power:.0%} to detect removing all of it)"
    raise ValueError(f"claim must be 'mitigates' or 'does not help much', got {claim!r}")


def comparisons(units: Sequence[Unit], pipelines: Sequence[str], settings: Sequence[str],
                against: Mapping[str, str] | None = None, n_boot: int = 1000) -> list[dict[str, object]]:
    """One row per (pipeline, setting): ``reduction`` of DS_flip against the direct pipeline (or
    ``against[pipeline]``, a row named "<pipeline> vs <base>"), the ``room``, the ``accuracy change``
    in the setting and without conflict, over the units that ran the pipeline; then Holm over the
    whole table (``p (Holm)``, ``rejected`` at the family-wise 5%), and each row's ``power`` to
    detect the room and smallest detectable reduction ``mde`` at the Bonferroni level
    5% / rows (:func:`power_to_detect`), which every row carries as ``level``."""
    against = dict(against or {})
    plan = [(p, "direct") for p in pipelines] + [(p, b) for p, b in against.items() if p in pipelines]
    rows = []
    for (p, base), s in ((pb, s) for pb in plan for s in settings):
        us = [u for u in units if p in u["runs"] and base in u["runs"]]
        if not us:
            continue
        rows.append({"pipeline": p if base == "direct" else f"{p} vs {base}", "setting": s, "units": len(us),
                     "reduction": reduction(us, p, s, base=base, n_boot=n_boot), "room": room(us, s, n_boot=n_boot),
                     "accuracy change": difference(us, (p, s), (base, s), "accuracy", n_boot=n_boot),
                     "no-conflict accuracy change": difference(us, (p, "no_conflict"), (base, "no_conflict"),
                                                               "accuracy", n_boot=n_boot)})
    level = 0.05 / max(1, len(rows))
    for r, ph in zip(rows, stats.holm([r["reduction"]["p"] for r in rows])):
        r.update({"p (Holm)": ph, "rejected": ph <= 0.05, "level": level,
                  "power": power_to_detect(r["room"]["estimate"], r["reduction"]["se"], level),
                  "mde": detectable(r["reduction"]["se"], level)})
    return rows


CLAIM_OF = {"chain": (3, "mitigates"), "filter oracle": (4, "does not help much"),
            "filter confidence": (4, "does not help much")}


def claim_rows(rows: Sequence[Mapping[str, object]], scenario: str) -> list[dict[str, object]]:
    """The rows of :func:`comparisons` that answer the paper's claims 3 (the chain, also against
    its input-matched control) and 4 (either filter), as chapter 6 reads them: estimate [low, high]
    of the reduction, its Holm p, power, room, accuracy change and the verdict in words."""
    out = []
    for r in rows:
        name = r["pipeline"].split(" vs ")[0]
        if name not in CLAIM_OF:
            continue
        claim, kind = CLAIM_OF[name]
        base = r["pipeline"].split(" vs ")[1] if " vs " in r["pipeline"] else "direct"
        red = r["reduction"]
        out.append({"claim": claim, "scenario": scenario, "setting": f"{r['setting']}, {r['pipeline']}",
                    "estimate": red["estimate"], "low": red["low"], "high": red["high"], "p (Holm)": r["p (Holm)"],
                    "power": r["power"], "room": r["room"]["estimate"], "accuracy change": r["accuracy change"]["estimate"],
                    "measure": ("DS_flip(direct) − DS_flip(pipeline)" if base == "direct"
                                else f"DS_flip({base}) − DS_flip({name})"),
                    "against": f"the {base} pipeline; room: direct − floor; Holm over every pipeline x setting",
                    "verdict": claim_verdict(kind, red, r["room"], r["rejected"], r["level"])})
    return out
