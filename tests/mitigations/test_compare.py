import numpy as np
import pytest

from w2s_helpers.mitigations import compare


def _units(k=4, n=300, cut=0.0, seed=0):
    """Units whose direct explicit student flips a share of Wuk∩Sk; the 'mitigated' pipeline flips
    ``cut`` less of it; the floor flips nothing."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        w, s = rng.random(n) < 0.6, rng.random(n) < 0.85
        nc = s.copy()
        cell = s & ~w
        c = nc & ~(cell & (rng.random(n) < 0.4))
        m = nc & ~(cell & (rng.random(n) < 0.4 - cut))
        out.append({"weak": w, "strong": s, "floor": nc.copy(),
                    "runs": {"direct": {"no_conflict": nc, "explicit": c},
                             "mitigated": {"no_conflict": nc, "explicit": m}}})
    return out


def test_a_planted_reduction_is_found_and_none_is_not():
    red = compare.reduction(_units(cut=0.3), "mitigated", "explicit", n_boot=300)
    assert red["low"] > 0 and red["p"] < 0.05 and 0.2 < red["estimate"] < 0.4
    null = compare.reduction(_units(cut=0.0), "mitigated", "explicit", n_boot=300)
    assert null["low"] < 0 < null["high"]
    room = compare.room(_units(), "explicit", n_boot=300)
    assert room["low"] > 0.3                      # the floor flips nothing; the direct run 40% of the cell


def test_the_claim_verdicts_follow_the_numbers():
    room = {"estimate": 0.2, "low": 0.1, "high": 0.3}
    no_room = {"estimate": 0.01, "low": -0.02, "high": 0.04}
    red = lambda e, lo, hi, se=0.02: {"estimate": e, "low": lo, "high": hi, "se": se}
    assert compare.claim_verdict("mitigates", red(0.1, 0.05, 0.15), room, True) == "supported: lowers DS_flip"
    assert "not that it is partial" in compare.claim_verdict("mitigates", red(0.3, 0.25, 0.35), room, True)
    assert compare.claim_verdict("mitigates", red(-0.1, -0.15, -0.05), room, False).startswith("contradicted")
    assert compare.claim_verdict("mitigates", red(0.02, -0.02, 0.06), room, False).startswith("not detected (power")
    assert compare.claim_verdict("mitigates", red(0.1, 0.05, 0.15), no_room, True).startswith("not testable")
    assert compare.claim_verdict("does not help much", red(0.02, -0.01, 0.05), room, False).startswith("supported")
    assert compare.claim_verdict("does not help much", red(0.18, 0.15, 0.21), room, True).startswith("contradicted")
    assert compare.claim_verdict("does not help much", red(0.1, 0.0, 0.2), room, False).startswith("undecided")
    assert compare.claim_verdict("mitigates", red(np.nan, np.nan, np.nan), room, False).startswith("not testable")
    with pytest.raises(ValueError):
        compare.claim_verdict("helps", red(0.1, 0.05, 0.15), room, True)


def test_power_grows_with_the_effect():
    assert compare.power_to_detect(0.0, 0.01) == pytest.approx(0.05, abs=1e-6)
    assert compare.power_to_detect(0.1, 0.01) > 0.99
    assert np.isnan(compare.power_to_detect(0.1, 0.0))
    assert compare.power_to_detect(0.05, 0.02, level=0.05 / 12) < compare.power_to_detect(0.05, 0.02)
    assert compare.detectable(0.01) == pytest.approx(0.0249, abs=1e-3)


def test_the_comparison_table_corrects_over_the_family_and_words_the_claims():
    units = _units(cut=0.3)
    for u in units:                                   # a filter that removes nothing, and a chain control
        u["runs"]["filter confidence"] = u["runs"]["direct"]
        u["runs"]["chain"] = u["runs"]["mitigated"]
        u["runs"]["direct on D_gt"] = u["runs"]["direct"]
    rows = compare.comparisons(units, ["chain", "filter confidence", "absent"], ["explicit"],
                               against={"chain": "direct on D_gt"}, n_boot=300)
    assert [r["pipeline"] for r in rows] == ["chain", "filter confidence", "chain vs direct on D_gt"]
    assert all(r["level"] == pytest.approx(0.05 / 3) for r in rows)
    assert [r["rejected"] for r in rows] == [True, False, True]
    assert all(r["p (Holm)"] >= r["reduction"]["p"] for r in rows)
    claims = compare.claim_rows(rows, "DPO")
    assert [c["claim"] for c in claims] == [3, 4, 3] and {c["scenario"] for c in claims} == {"DPO"}
    assert claims[0]["verdict"].startswith("supported") and claims[1]["verdict"].startswith("supported: removes less")
    assert claims[2]["measure"] == "DS_flip(direct on D_gt) − DS_flip(chain)"
