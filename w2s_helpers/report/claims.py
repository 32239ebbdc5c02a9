"""The paper's four claims (PAPER.md section 7) and the course's answer to each.

Every row of the claims table comes from a chapter's saved summary
(:func:`w2s_helpers.core.results.save_summary`): chapter 3 (reward models: claims 1 and 2),
chapter 4 (policies: claim 1), chapter 5 (reward models: claims 3 and 4). A row carries an
estimate with its 95% interval, what it was judged against, whether the course's test rejected,
whether it could be tested at all, and its power where the chapter measured it. The verdict in
words follows from those numbers only (:func:`verdict_words`).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

CLAIMS = {
    1: "W2S deception exists in every setting (DS > 0)",
    2: "it intensifies as the weak-strong capability gap grows",
    3: "bootstrapping with an intermediate model mitigates it somewhat, not fully",
    4: "high-confidence filtering does not help much",
}

VERDICTS = ("supported", "contradicted", "not detected", "undecided", "not testable")
LOW_POWER = 0.5     # below this a "not detected" is called no evidence of absence


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def verdict_words(claim: int, estimate: float, low: float, high: float, rejected: bool, testable: bool,
                  power: float | None = None, passed: Sequence[str] | None = None) -> str:
    """The course's answer to claim 1 or 2 (an effect the claim says is there) from one row.

    rejected: the course's test said yes (chapter 3 and 4: both checks, Holm; the gap: the slope
              beyond the floor's interval above 0). testable: the test could be computed (a Wuk∩Sk
              to score, enough runs for a slope). power: the share of simulated experiments with a
              planted effect in which the same test said yes (None or NaN: not measured).
    passed:   the checks of a several-check verdict that were rejected on their own (chapter 3's
              verdict needs both); a "no" with some passed says which, so an estimate whose
              interval clears 0 next to a "no" is not a puzzle.
    """
    if claim not in (1, 2):
        raise ValueError(f"verdict_words answers claims 1 and 2 (3 and 4 come worded from chapter 5), got {claim}")
    if not testable or _nan(estimate):
        return "not testable at this profile"
    if rejected:
        return "supported"
    if passed:
        return f"not detected as a whole: only {' and '.join(passed)} rejected (the verdict needs every check)"
    if not _nan(high) and high < 0:
        return "contradicted"
    if _nan(power):
        return "not detected (power not measured: no planted control)"
    if power < LOW_POWER:
        return f"not detected with low power ({power:.0%}): no evidence either way"
    return f"not detected (power {power:.0%})"


def kind(verdict: str) -> str:
    """The verdict's first words as one of :data:`VERDICTS` (for colours and counts)."""
    for v in VERDICTS:
        if verdict.startswith(v):
            return v
    raise ValueError(f"not a verdict: {verdict!r}")


def table(rows: Sequence[Mapping[str, object]]):
    """The claims table: one row per (claim, scenario, setting), columns the paper's claim, our
    estimate [95% CI], what it was judged against, power, and the verdict in words.

    rows: dicts with ``claim`` (1-4), ``scenario``, ``setting``, ``estimate``, ``low``, ``high``,
    ``against`` (the control), ``power`` (or NaN) and either ``verdict`` (claims 3 and 4, worded by
    chapter 5) or ``rejected`` and ``testable`` (claims 1 and 2)."""
    import pandas as pd

    out = []
    for r in rows:
        claim = int(r["claim"])
        words = r.get("verdict") or verdict_words(claim, r["estimate"], r["low"], r["high"], bool(r["rejected"]),
                                                  bool(r["testable"]), r.get("power"), r.get("passed"))
        est = "—" if _nan(r["estimate"]) else (f"{r['estimate']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
                                               if not _nan(r["low"]) else f"{r['estimate']:+.3f}")
        power = r.get("power")
        out.append({"claim": f"{claim}. {CLAIMS[claim]}", "scenario": r["scenario"], "setting": r["setting"],
                    "our estimate [95% CI]": est, "measured as": r["measure"], "judged against": r["against"],
                    "power": "not measured" if _nan(power) else f"{power:.0%}", "verdict": words})
    return pd.DataFrame(out)


def summary(frame, profile: str, data: str) -> str:
    """A paragraph a teacher can paste into slides: per claim, how many rows were supported,
    contradicted, not detected or not testable, and where the run came from."""
    parts = []
    for claim, sub in frame.groupby("claim", sort=False):
        counts = sub["verdict"].map(kind).value_counts()
        said = ", ".join(f"{n} {v}" for v, n in counts.items())
        parts.append(f"Claim {claim[:1]} ({claim[3:]}): {said} (of {len(sub)} settings).")
    return (f"Reproduction at profile '{profile}' on {data}. " + " ".join(parts)
            + " A 'not detected' is evidence of absence only where its power is high; 'not testable' means this "
              "run could not have answered.")
