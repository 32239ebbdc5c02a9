"""Saved runs: round trip and compute-once."""

import numpy as np
import pytest

from w2s_helpers.core import results


def test_results_round_trip(isolated_cache):
    cfg = results.RunConfig(role="student", model="b", weak="a", setting="explicit", alpha=0.5, seed=1)
    delta = np.array([1.5, -0.5, 0.0], dtype=np.float32)
    correct = np.array([True, False, True])
    results.save_run(cfg, delta, correct)
    back = results.load_run(cfg)
    np.testing.assert_array_equal(back["correct"], correct)
    np.testing.assert_allclose(back["prob"], 1 / (1 + np.exp(-delta)), rtol=1e-6)
    assert results.load_run(results.RunConfig(role="student", model="b", seed=2)) is None
    table = results.load_runs(role="student", alpha=0.5)
    assert len(table) == 1 and table.iloc[0]["acc"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="one length"):
        results.save_run(cfg, delta, correct[:2])


def test_load_or_run_computes_once(isolated_cache):
    calls = []

    def compute():
        calls.append(1)
        return np.array([0.5, -1.0, 2.0])

    cfg = results.RunConfig(role="strong", model="m", profile="t")
    first = results.load_or_run(cfg, compute)
    again = results.load_or_run(cfg, compute)
    assert len(calls) == 1 and first["correct"].tolist() == [True, False, True]
    assert np.array_equal(first["delta"], again["delta"])


def test_an_unreadable_saved_run_is_computed_again_with_a_warning(isolated_cache):
    cfg = results.RunConfig(role="strong", model="m", profile="t")
    results.load_or_run(cfg, lambda: np.array([0.5, -1.0]))
    path = isolated_cache / "results" / f"{cfg.key()}.safetensors"
    path.write_bytes(path.read_bytes()[:40])                      # truncated, as by a crash
    with pytest.warns(UserWarning, match="unreadable"):
        again = results.load_or_run(cfg, lambda: np.array([-2.0, 3.0]))
    assert again["correct"].tolist() == [False, True]
    assert results.load_run(cfg)["delta"].tolist() == [-2.0, 3.0]  # and stored whole


def test_runs_saved_under_another_version_are_never_read(isolated_cache, monkeypatch):
    cfg = results.RunConfig(role="strong", model="m", profile="t")
    with monkeypatch.context() as m:           # (not monkeypatch.undo(): that would undo the isolated cache too)
        m.setattr(results, "RESULTS_VERSION", "0")
        results.save_run(cfg, np.array([1.0]), np.array([True]))
        old_key = cfg.key()
    assert cfg.key() != old_key                                    # the version is in the key
    assert results.load_run(cfg) is None
    assert results.load_runs(profile="t").empty                     # and the old file is not listed
    results.save_run(cfg, np.array([-1.0]), np.array([False]))
    assert len(results.load_runs(profile="t")) == 1


def test_the_fit_settings_are_part_of_the_key(isolated_cache):
    a = results.RunConfig(role="strong", model="m", fit="aaaa")
    results.save_run(a, np.array([1.0]), np.array([True]))
    assert results.load_run(results.RunConfig(role="strong", model="m", fit="bbbb")) is None


def test_summaries_round_trip_and_are_keyed(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path))
    key = {"profile": "ci", "data_hash": "abc", "task": "arithmetic"}
    rows = [{"claim": "1. deception exists", "setting": "implicit 10%", "estimate": 0.061}]
    assert results.load_summary("claims", key) is None
    results.save_summary("claims", key, rows)
    assert results.load_summary("claims", key) == rows
    assert results.load_summary("claims", {**key, "data_hash": "other"}) is None


def test_mitigated_runs_have_their_own_keys_and_stay_out_of_earlier_chapters_tables(isolated_cache):
    plain = results.RunConfig(role="student", model="b", weak="a", setting="explicit", alpha=0.5)
    chained = results.RunConfig(role="student", model="b", weak="a", setting="explicit", alpha=0.5,
                                mitigation="chain via m")
    assert plain.key() != chained.key()
    results.save_run(plain, np.array([1.0, -1.0]), np.array([True, False]))
    results.save_run(chained, np.array([-1.0, -1.0]), np.array([False, False]))
    assert len(results.load_runs(role="student")) == 1                      # chapters 1-4 see their own runs
    assert results.load_runs(mitigation="chain via m").iloc[0]["acc"] == 0.0
    assert len(results.load_runs(role="student", mitigation=None)) == 2


def test_pick_matches_floats_closely_and_names_what_is_missing():
    import pandas as pd
    import pytest

    frame = pd.DataFrame({"model": ["a", "a", "b"], "alpha": [0.0, 0.1 + 0.2, 0.3], "seed": [0, 0, 1]})
    assert results.pick(frame, alpha=0.3, model="a").name == 1           # 0.1 + 0.2 is close to 0.3
    assert results.pick(frame, model="b", seed=1).name == 2
    with pytest.raises(LookupError, match=r"no saved student with model='c'.*: run chapter 2"):
        results.pick(frame, "student", "run chapter 2", model="c")
    with pytest.raises(LookupError):
        results.pick(frame, setting="twin")                               # an absent column matches nothing


def test_a_pending_run_is_returned_unsaved_only_when_asked(isolated_cache):
    cfg = results.RunConfig(role="student", model="m", profile="t")
    nan = lambda: np.full(3, np.nan)
    with pytest.raises(ValueError, match="not finite"):
        results.load_or_run(cfg, nan)
    got = results.load_or_run(cfg, nan, pending_ok=True)               # inside lab.queue(): a queued fit
    assert np.isnan(got["delta"]).all() and not got["correct"].any() and results.load_run(cfg) is None
    done = results.load_or_run(cfg, lambda: np.array([1.0, -1.0, 2.0]), pending_ok=True)
    assert done["correct"].tolist() == [True, False, True] and results.load_run(cfg) is not None
