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
