"""PolicyLab: trains once and loads after, keeps and regenerates policies, clear errors."""

import pytest
import torch
from conftest import tiny_rung

from w2s_helpers.core import profiles
from w2s_helpers.policies import encoding, generation, training
from w2s_helpers.policies.lab import PolicyLab


def _tiny_profile(folders, arch="llama", **kw):
    rung = tiny_rung(folders, arch)
    po = profiles.POSettings(weak=rung, strong=rung, n_train=6, n_test=5, n_helpful=3, max_prompt=16,
                             max_response=8, k=1, batch_size=3, **kw)
    return profiles.get("ci").replace(po=po)


def test_policy_lab_whole_regime_trains_keeps_and_generates(tiny_hub_folders, isolated_cache):
    P = _tiny_profile(tiny_hub_folders, "gpt2", regime="whole", lora_r=0)
    lab = PolicyLab(P, progress=False)
    assert isinstance(lab.data(P.po.strong, "test"), encoding.Tokens)
    cfg = training.POConfig.for_loss("dpo", lora_r=0, batch_size=3, po_epochs=2)
    parts = [("gt", None, True)]
    run = lab.run(P.po.strong, cfg, parts, keep=True)
    assert run.logps["test"].shape == (5, 2)
    model = lab.policy_model(P.po.strong, cfg, parts)
    assert generation.generate(model, lab.loaded(P.po.strong).tokenizer, ["hi"], max_new_tokens=3)[0] is not None


def test_policy_lab_trains_once_and_loads_after(tiny_hub_folders, isolated_cache, monkeypatch):
    P = _tiny_profile(tiny_hub_folders)
    lab = PolicyLab(P, progress=False)
    cfg = training.POConfig.for_loss("simpo", k=1, batch_size=3)
    parts = [("w2s", None, torch.tensor([True, False, True, True, False, True])), ("helpful", None, True)]
    run = lab.run(P.po.strong, cfg, parts, score=("test", "w2s"), keep=True)
    assert run.logps["test"].shape == (5, 2) and run.logps["w2s"].shape == (6, 2)
    assert run.correct("test", "simpo").dtype == torch.bool
    model = lab.policy_model(P.po.strong, cfg, parts, ("test", "w2s"))
    assert generation.generate(model, lab.loaded(P.po.strong).tokenizer, ["hi"], max_new_tokens=3)[0] is not None

    def refuse(*a, **k):
        raise AssertionError("trained again instead of loading")

    monkeypatch.setattr(training, "sft", refuse)
    monkeypatch.setattr(training, "preference_optimise", refuse)
    again = PolicyLab(P, progress=False).run(P.po.strong, cfg, parts, score=("test", "w2s"), keep=True)
    assert torch.equal(again.logps["test"], run.logps["test"]) and again.seconds == run.seconds
    with pytest.raises(ValueError, match="labels"):
        lab.run(P.po.strong, cfg, [("w2s", None, torch.ones(3, dtype=torch.bool))])
    with pytest.raises(FileNotFoundError, match="kept policy"):
        lab.policy_model(P.po.strong, cfg.replace(seed=7), parts)


def test_a_run_keeps_its_training_history_and_a_watched_one_its_held_out_accuracy(tiny_hub_folders, isolated_cache):
    P = _tiny_profile(tiny_hub_folders)
    lab = PolicyLab(P, progress=False)
    cfg = training.POConfig.for_loss("dpo", k=1, batch_size=3, po_epochs=2)
    parts = [("gt", None, True)]
    plain = lab.run(P.po.strong, cfg, parts)
    steps = 2 * 2                                            # 6 pairs in batches of 3, two epochs
    assert len(plain.history["sft.loss"]) == 2 and len(plain.history["po.loss"]) == steps
    assert "po.watch_accuracy" not in plain.history
    assert torch.all((plain.history["po.accuracy"] >= 0) & (plain.history["po.accuracy"] <= 1))
    watched = lab.run(P.po.strong, cfg, parts, watch=True)   # cached without a watch: trained again
    acc = watched.history["po.watch_accuracy"]
    assert len(acc) == len(watched.history["po.watch_step"]) and watched.history["po.watch_step"][-1] == steps
    assert torch.all((acc >= 0) & (acc <= 1))
    assert torch.equal(watched.logps["test"], plain.logps["test"])       # watching changes nothing it trains
    again = PolicyLab(P, progress=False).run(P.po.strong, cfg, parts, watch=True)
    assert torch.equal(again.history["po.watch_accuracy"], acc)          # read back from the cache


def test_the_implied_margin_is_positive_where_the_policy_prefers_the_labelled_side():
    lp, ref = torch.tensor([[-1.0, -3.0], [-2.0, -1.0]]), torch.zeros(2, 2)
    lengths, label = torch.ones(2, 2), torch.tensor([True, False])
    for loss in ("dpo", "simpo"):
        m = training.implied_margin(lp, ref, lengths, label, training.POConfig.for_loss(loss))
        assert (m > 0).all()
        assert (training.implied_margin(lp, ref, lengths, ~label, training.POConfig.for_loss(loss)) < 0).all()


def test_the_trl_engine_trains_the_course_engine_s_whole_policy(tiny_hub_folders, isolated_cache, monkeypatch):
    import dataclasses

    from w2s_helpers.policies import lab as policy_lab

    from .stand_ins import PAIRS

    P = _tiny_profile(tiny_hub_folders, "gpt2", regime="whole", lora_r=0)
    P = P.replace(po=dataclasses.replace(P.po, max_prompt=3, max_response=4))   # cuts that bite, in both engines
    cfg = training.POConfig.for_loss("dpo", lora_r=0, batch_size=len(PAIRS), po_epochs=3, sft_epochs=2,
                                     po_lr=1e-2, sft_lr=1e-2)
    parts = [("gt", None, torch.tensor([True, False, True, True, False, True]))]
    runs, keys = {}, {}
    for engine in ("course", "trl"):
        lab = PolicyLab(P.replace(po=dataclasses.replace(P.po, engine=engine)), progress=False)
        lab.pools = {"gt": PAIRS, "test": PAIRS[:5]}          # short pairs: the tiny model's 128 positions
        keys[engine] = lab._run_key(P.po.strong, cfg, parts, ["test"], None)
        runs[engine] = lab.run(P.po.strong, cfg, parts, watch=True)
        if engine == "course":
            base = sequence_logps_of(lab, P.po.strong)
    moved = (runs["course"].logps["test"] - base).abs().max().item()
    assert moved > 0.1
    torch.testing.assert_close(runs["trl"].logps["test"], runs["course"].logps["test"], rtol=0, atol=1e-3 * moved)
    # the same training records (one update per epoch here): losses, margins, and the watched accuracy
    course, trl = runs["course"].history, runs["trl"].history
    assert set(trl) == set(course) >= {"sft.loss", "po.loss", "po.margin", "po.watch_accuracy"}
    for key in course:
        assert len(trl[key]) == len(course[key]), key
        # (at the first update the policy is its reference: margins of 0 up to rounding, whose sign
        # decides po.accuracy by chance; seen: 1.3e-7 through trl, 0 in the course's loop)
        first = 1 if key == "po.accuracy" else 0
        torch.testing.assert_close(trl[key][first:], course[key][first:], rtol=0, atol=1e-3, msg=key)
    assert keys["trl"] != keys["course"]
    assert "engine" not in policy_lab.run_settings(dataclasses.replace(P.po, engine="course"))   # old keys kept


def sequence_logps_of(lab, rung):
    from w2s_helpers.policies.policy import sequence_logps

    return sequence_logps(lab.base_policy(rung), lab.data(rung, "test"))
