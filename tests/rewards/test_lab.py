"""The reward lab: every regime behind one interface."""

import warnings

import pytest
import torch
from conftest import tiny_rung

from w2s_helpers.core import profiles, results
from w2s_helpers.core.features import FeatureSpec
from w2s_helpers.rewards import heads
from w2s_helpers.rewards import lab as reward_lab


def _tiny_profile(ladder):
    return profiles.get("ci").replace(n_train=10, n_test=8, ladder=ladder, top_k=1, batch_size=4, lr=1e-3,
                                      features=FeatureSpec(max_length=48, dtype="float32", batch_size=8))


@pytest.mark.parametrize("regime,arch", [("top_blocks", "llama"), ("finetune", "gpt2")])
def test_adapted_labs_share_the_probe_interface(tiny_hub_folders, isolated_cache, regime, arch):
    rung = tiny_rung(tiny_hub_folders, arch)
    lab = reward_lab.build(_tiny_profile((rung,)), regime, verbose=False)
    weak = lab.ceiling(rung, seed=0, n=4)                          # scores test and w2s by default
    assert lab.margins(weak).shape == (8,) and lab.margins(weak, "w2s").shape == (10,)
    idx = lab.train_idx("w2s", 100)
    soft = torch.sigmoid(lab.margins(weak, "w2s")[idx])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        student = lab.fit(rung, [("w2s", idx, soft)], seed=0, alpha=0.5, score=("test",))
    assert torch.isfinite(lab.margins(student)).all()
    with pytest.raises(KeyError, match="scored"):
        lab.margins(student, "w2s")


def test_probe_lab_fit_handles_slot_order_and_parts():
    P = profiles.get("ci")
    g = torch.Generator().manual_seed(0)
    sizes = {"gt": 300, "w2s": 30, "test": 300, "helpful": 100}
    pools = {k: [None] * n for k, n in sizes.items()}
    lab = reward_lab.ProbeLab(P, pools, data_hash="x")
    truth = torch.randn(5, generator=g)
    phi = {}
    for split, n in sizes.items():
        c, r = torch.randn(n, 5, generator=g), torch.randn(n, 5, generator=g)
        swap = ((c - r) @ truth < 0)[:, None]
        phi[split] = (torch.where(swap, r, c), torch.where(swap, c, r))   # chosen = truth-preferred
    lab.phi["r"], lab.l2["r"] = phi, 1e-3
    m = lab.fit("r", [("gt", torch.arange(200), 1.0), ("helpful", torch.arange(100), 1.0)], seed=3)
    assert (lab.margins(m) > 0).float().mean() > 0.9
    # labels are chosen-first: all-zero labels learn the opposite preference
    anti = lab.fit("r", [("gt", torch.arange(200), 0.0)], seed=3)
    assert (lab.margins(anti) < 0).float().mean() > 0.9
    with pytest.raises(ValueError, match="labels"):
        lab.fit("r", [("gt", torch.arange(20), torch.ones(3))], seed=0)


@pytest.mark.parametrize("regime, change", [
    ("probe", {"features": FeatureSpec(max_length=64)}),
    ("top_blocks", {"top_lr": 3e-4}),
    ("top_blocks", {"top_k": 1}),
    ("finetune", {"lr": 1e-4}),
    ("finetune", {"epochs": 2}),
    ("probe", {"train_frac": 1.0}),
])
def test_a_hyper_parameter_that_decides_the_fit_changes_the_saved_runs_key(regime, change):
    P = profiles.get("ci")
    before = reward_lab.fit_hash(P, regime)
    assert reward_lab.fit_hash(P.replace(**change), regime) != before
    assert reward_lab.fit_hash(P.replace(n_helpful=7), regime) == before   # not a fit setting
    key = lambda fit: results.RunConfig(role="strong", model="m", regime=regime, fit=fit).key()
    assert key(reward_lab.fit_hash(P.replace(**change), regime)) != key(before)


def test_the_fitting_codes_version_and_defaults_change_the_fit_hash(monkeypatch):
    P = profiles.get("ci")
    before = {r: reward_lab.fit_hash(P, r) for r in ("probe", "top_blocks", "finetune")}
    with monkeypatch.context() as m:
        m.setattr(reward_lab, "FIT_VERSION", "test")
        assert all(reward_lab.fit_hash(P, r) != h for r, h in before.items())
    real = heads.choose_l2
    with monkeypatch.context() as m:
        m.setattr(heads, "choose_l2", lambda diff, label, grid=(0.5,), folds=5, seed=0, steps=300: real(diff, label))
        assert reward_lab.fit_hash(P, "probe") != before["probe"]   # a new L2 grid in code
    with pytest.raises(ValueError, match="regime"):
        reward_lab.fit_hash(P, "nope")


def test_train_idx_follows_the_profiles_train_frac():
    pools = {"gt": list(range(50))}
    for frac, n in ((0.8, 40), (1.0, 50)):
        lab = reward_lab.Lab(profiles.get("ci").replace(train_frac=frac), pools, data_hash="x", precision="float32")
        idx = lab.train_idx("gt", seed=3)
        assert len(idx) == n and len(set(idx.tolist())) == n
    paper = profiles.get("paper")
    assert paper.train_frac == 1.0 and paper.weak_n is None     # the paper's design: all of D_gt, every seed


def test_pools_hash_is_the_labs_data_hash_and_ignores_the_helpful_pool():
    from w2s_helpers.core.data import PreferencePair

    pair = lambda i: PreferencePair(prompt=f"q{i}", chosen=f"no {i}", rejected=f"yes {i}")
    pools = {"gt": [pair(0), pair(1)], "w2s": [pair(2)], "test": [pair(3), pair(4)]}
    lab = reward_lab.Lab(profiles.get("ci"), {**pools, "helpful": [pair(5)]}, precision="float32")
    assert lab.data_hash == reward_lab.pools_hash(pools)
    assert lab.data_hash != reward_lab.pools_hash({**pools, "test": pools["test"][1:]})


def test_a_jobs_profile_queues_fits_and_reads_them_once_trained(tiny_hub_folders, isolated_cache):
    from w2s_helpers.rewards import jobs

    rung = tiny_rung(tiny_hub_folders, "gpt2")
    P = _tiny_profile((rung,)).replace(regime="finetune", finetune_jobs=True)

    def chapter():
        """A chapter's pattern: ceilings, then a student on the weak ceiling's labels, then the check."""
        lab = reward_lab.build(P, verbose=False)
        with lab.queue():
            weak = lab.ceiling(rung, seed=0, n=4)
            soft = torch.sigmoid(lab.margins(weak, "w2s"))
            student = lab.fit(rung, [("w2s", torch.arange(10), soft)], seed=0, score=("test",))
        return lab.margins(weak), lab.margins(student)

    with pytest.raises(reward_lab.PendingFits, match=r"1 reward models are queued .*1 more fits need") as first:
        chapter()
    assert "accelerate launch --config_file configs/accelerate/ddp.yaml" in str(first.value)
    path = next(jobs.jobs_dir().glob("*.jsonl"))
    outside = reward_lab.build(P, verbose=False)                       # without the block: the first read stops
    with pytest.raises(reward_lab.PendingFits, match="accelerate launch"):
        outside.margins(outside.ceiling(rung, seed=0, n=4))
    with pytest.raises(ValueError, match="not finite"):                # a queued fit's NaN is never saved
        results.save_run(results.RunConfig(role="weak", model="x", profile="t"),
                         torch.full((3,), float("nan")).numpy(), [True] * 3)
    assert jobs.run_file(path) and len(jobs.read_jobs(path)) == 1      # round 1: the weak ceiling
    with pytest.raises(reward_lab.PendingFits, match=r"^1 reward models are queued in [^,]*\. Train"):
        chapter()                                                      # round 2: the student
    assert len(jobs.run_file(path)) == 1 and len(jobs.read_jobs(path)) == 2
    d_weak, d_student = chapter()                                      # round 3: every fit read
    assert torch.isfinite(d_weak).all() and torch.isfinite(d_student).all()
    assert jobs.status(jobs.read_jobs(path)) == {"finished": 2, "interrupted": 0, "not started": 0}


def test_a_fit_has_one_job_key_whatever_other_pools_a_lab_holds(tiny_hub_folders, isolated_cache):
    # chapter 2's lab adds the helpful pairs to chapter 1's pools: its ceilings must be chapter 1's jobs
    from w2s_helpers.core.data import PreferencePair

    pair = lambda i: PreferencePair(prompt=f"q{i}", chosen=f"no {i}", rejected=f"yes {i}")
    pools = {"gt": [pair(i) for i in range(8)], "w2s": [pair(10 + i) for i in range(6)], "test": [pair(20), pair(21)]}
    rung = tiny_rung(tiny_hub_folders, "gpt2")
    P = _tiny_profile((rung,)).replace(regime="finetune", finetune_jobs=True)
    one = reward_lab.AdaptLab(P, dict(pools), precision="float32")
    two = reward_lab.AdaptLab(P, {**pools, "helpful": [pair(30)]}, precision="float32")
    job = lambda lab, score: lab.finetune_job(rung, [("gt", torch.arange(4), 1.0)], torch.ones(4), 0, 0.0, score)
    assert job(one, ("test",)).key == job(two, ("test",)).key
    assert job(one, ("test",)).key != job(one, ("test", "w2s")).key          # what a job scores is part of it
    other = reward_lab.AdaptLab(P, {**pools, "test": [pair(22), pair(21)]}, precision="float32")
    assert job(other, ("test",)).key != job(one, ("test",)).key              # and so are the pairs it reads
