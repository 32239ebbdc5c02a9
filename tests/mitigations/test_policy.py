"""Chapter 5's policy pipelines: the filter's confidence, chapter 4's keys reused, the chain's
labellers and the implicit setting's helpful share, on tiny stand-in policies."""

import math

import pytest
import torch
from conftest import tiny_rung

from w2s_helpers.core import profiles
from w2s_helpers.mitigations import filtering
from w2s_helpers.mitigations.policy import SETTINGS, PolicyPipelines, weak_prob
from w2s_helpers.policies import training
from w2s_helpers.policies.lab import PolicyLab


def test_weak_prob_reads_the_margin_on_each_losss_scale():
    d = torch.tensor([-3.0, 0.0, 2.0])
    for loss in ("dpo", "simpo"):
        p = weak_prob(d, loss)
        assert torch.equal(p >= 0.5, d >= 0)           # the same side as the hard label
    assert weak_prob(torch.tensor([50 * math.log(3)]), "dpo").item() == pytest.approx(0.75)
    assert weak_prob(torch.tensor([math.log(3)]), "simpo").item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="loss"):
        weak_prob(d, "ipo")


def _pipes(folders):
    rung = tiny_rung(folders, "llama")
    po = profiles.POSettings(weak=rung, strong=rung, n_train=6, n_test=5, n_helpful=3, max_prompt=16,
                             max_response=8, k=1, batch_size=3)
    lab = PolicyLab(profiles.get("ci").replace(po=po), progress=False)
    config = lambda loss, seed: training.POConfig.for_loss(loss, k=1, batch_size=3, seed=seed)
    return lab, PolicyPipelines(lab, config, mid=rung)


def test_the_direct_pipeline_reads_chapter_4s_runs(tiny_hub_folders, isolated_cache, monkeypatch):
    lab, pipes = _pipes(tiny_hub_folders)
    S, cfg = lab.S, pipes.config("dpo", 0)
    # chapter 4's calls, as the notebook makes them
    labels = lab.run(S.weak, cfg, [("gt", None, True)], score=("w2s", "test"), keep=True).correct("w2s", "dpo")
    assert not pipes.ready(["dpo"], [0])                     # weak runs alone: chapter 4 only began
    lab.run(S.strong, cfg, [("w2s", None, True)], keep=True)
    nc = lab.run(S.strong, cfg, [("w2s", None, labels)], keep=True)
    imp = lab.run(S.strong, cfg, [("w2s", None, labels), ("helpful", None, True)], keep=True)
    assert pipes.ready(["dpo"], [0]) and not pipes.ready(["dpo"], [1])

    def refuse(*a, **k):
        raise AssertionError("trained again instead of reading chapter 4's run")

    monkeypatch.setattr(training, "sft", refuse)
    got = pipes.pipeline("dpo", 0, ("w2s", None, pipes.weak_labels("dpo", 0)))
    assert set(got) == set(SETTINGS)
    assert torch.equal(got["no_conflict"].logps["test"], nc.logps["test"])
    assert torch.equal(got["implicit"].logps["test"], imp.logps["test"])


def test_the_chain_labellers_and_a_filtered_students_data(tiny_hub_folders, isolated_cache):
    lab, pipes = _pipes(tiny_hub_folders)
    S, cfg = lab.S, pipes.config("simpo", 0)
    on_gt = pipes.weak_labels_of_gt("simpo", 0)            # W's labels of D_gt, from its kept blocks
    fresh = lab.run(S.weak, cfg, [("gt", None, True)], score=("gt",))   # the same training, scoring D_gt
    assert torch.equal(on_gt, fresh.correct("gt", "simpo"))
    chain = pipes.chain_labels("simpo", 0)
    assert chain.shape == (S.n_train,) and chain.dtype == torch.bool
    keep = torch.tensor([True, False, True, False, False, True])
    idx = torch.arange(S.n_train)[keep]
    parts = pipes.parts(("w2s", idx, chain[keep]), "implicit", seed=0)
    share = S.n_helpful / (S.n_helpful + S.n_train)
    assert len(parts) == 2 and len(parts[1][1]) == filtering.helpful_count(3, share, available=S.n_helpful)
    assert pipes.parts(("w2s", None, chain), "implicit", 0)[1] == ("helpful", None, True)   # chapter 4's
    assert pipes.pipeline("simpo", 0, ("w2s", idx[:0], chain[:0])) == {}
    with pytest.raises(ValueError, match="settings"):
        pipes.parts(("w2s", idx, chain[keep]), "explicit", 0)


def test_a_tiny_kept_set_gets_no_empty_helpful_part(tiny_hub_folders, isolated_cache):
    lab, pipes = _pipes(tiny_hub_folders)
    one = ("w2s", torch.tensor([2]), torch.tensor([True]))
    share = lab.S.n_helpful / (lab.S.n_helpful + lab.S.n_train)             # 1/3: one kept pair rounds to 0
    assert filtering.helpful_count(1, share, available=lab.S.n_helpful) == 0
    assert pipes.parts(one, "implicit", seed=0) == [one]
    assert set(pipes.pipeline("dpo", 0, one)) == set(SETTINGS)                 # trains, no crash


def test_an_intermediate_that_is_the_strong_rung_is_chapter_4s_student_rescored(tiny_hub_folders, isolated_cache):
    lab, pipes = _pipes(tiny_hub_folders)
    labels = pipes.weak_labels("simpo", 0)
    mid = pipes.intermediate("simpo", 0)                                     # mid == strong in _pipes
    direct = pipes.student("simpo", 0, "no_conflict", ("w2s", None, labels))
    again = lab.rescore(lab.S.strong, pipes.config("simpo", 0), [("w2s", None, labels)], "test")
    assert torch.equal(again.logps["test"], direct.logps["test"])             # the same policy
    assert mid.logps["gt"].shape == (lab.S.n_train, 2)
