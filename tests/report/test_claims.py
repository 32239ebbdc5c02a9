import pytest

from w2s_helpers.core import profiles, results
from w2s_helpers.report import claims, deviations, export

NAN = float("nan")


def row(claim=1, estimate=0.05, low=0.01, high=0.09, rejected=True, testable=True, power=0.9, **kw):
    return {"claim": claim, "scenario": "reward models", "setting": "implicit 38%", "estimate": estimate,
            "low": low,
            "high": high, "rejected": rejected, "testable": testable, "power": power, "measure": "DS_flip − floor",
            "against": "the floor", **kw}


@pytest.mark.parametrize("kw, words", [
    ({}, "supported"),
    ({"rejected": False, "low": -0.2, "high": -0.1, "estimate": -0.15}, "contradicted"),
    ({"rejected": False, "low": -0.01, "power": 0.9}, "not detected (power 90%)"),
    ({"rejected": False, "low": -0.01, "power": 0.2}, "not detected with low power (20%): no evidence either way"),
    ({"rejected": False, "low": -0.01, "power": NAN}, "not detected (power not measured: no planted control)"),
    ({"testable": False, "estimate": NAN, "low": NAN, "high": NAN}, "not testable at this profile"),
    ({"estimate": NAN}, "not testable at this profile"),
    ({"rejected": False, "passed": ["DS_flip above the floor"]},
     "not detected as a whole: only DS_flip above the floor rejected (the verdict needs every check)"),
])
def test_the_verdict_follows_from_the_numbers(kw, words):
    r = row(**kw)
    got = claims.verdict_words(1, r["estimate"], r["low"], r["high"], r["rejected"], r["testable"], r["power"],
                               r.get("passed"))
    assert got == words
    assert claims.kind(words) in claims.VERDICTS


def test_the_table_changes_when_the_saved_runs_change(isolated_cache):
    key = {"profile": "ci", "task": "hh"}
    results.save_summary("claims", key, [row(), row(claim=2, rejected=False, low=-0.1, power=NAN)])
    first = claims.table(results.load_summary("claims", key))
    assert first["verdict"].tolist() == ["supported", "not detected (power not measured: no planted control)"]
    assert first["claim"].iloc[0].startswith("1. W2S deception exists")
    results.save_summary("claims", key, [row(rejected=False, low=-0.02, power=0.3), row(claim=2, testable=False)])
    second = claims.table(results.load_summary("claims", key))
    assert second["verdict"].tolist() == ["not detected with low power (30%): no evidence either way",
                                          "not testable at this profile"]
    assert second["power"].tolist() == ["30%", "90%"]


def test_chapter_5s_worded_verdicts_pass_through_and_are_counted():
    worded = row(claim=3, verdict="not testable: no deception beyond the floor to remove (room +0.01 [-0.02, +0.04])")
    t = claims.table([row(), worded, row(claim=4, verdict="supported: removes less than half of the room")])
    assert t["verdict"].iloc[1].startswith("not testable")
    text = claims.summary(t, "ci", "the HH-RLHF splits")
    assert "Claim 1" in text and "1 supported" in text and "1 not testable" in text and "profile 'ci'" in text
    with pytest.raises(ValueError):
        claims.verdict_words(3, 0.1, 0.0, 0.2, True, True)
    with pytest.raises(ValueError):
        claims.kind("maybe")


def test_the_export_writes_csv_and_markdown(tmp_path):
    t = claims.table([row(), row(claim=2, rejected=False, low=-0.1, power=NAN, setting="a | b")])
    csv, md = export.write(t, tmp_path / "out", summary="A paragraph.")
    assert csv.read_text(encoding="utf-8").splitlines()[0].startswith("claim,scenario,setting")
    text = md.read_text(encoding="utf-8")
    assert text.count("\n| ") >= 2 and "a \\| b" in text and text.rstrip().endswith("A paragraph.")


def test_the_deviations_come_from_the_profile_and_the_data():
    P = profiles.get("ci")
    t = deviations.deviations(P, {"gt": 200, "w2s": 200, "test": 150, "helpful": 100}, "hh", "a data folder", "float32")
    assert t.loc["pairs per pool (D_gt, D_w2s, D_test)", "this run"] == "200, 200, 150"
    assert "minilm-l6 (22.7M, encoder; all-MiniLM" in t.loc["reward-model ladder", "this run"]
    assert "30 D_gt pairs" == t.loc["weak ceiling trained on", "this run"]
    arith = deviations.deviations(P, {"gt": 1, "w2s": 1, "test": 1, "helpful": 5}, "arithmetic", "x", "bf16")
    assert "arithmetic" in arith.loc["target objective", "this run"]
    assert t.index.is_unique and not t.isna().any().any()
