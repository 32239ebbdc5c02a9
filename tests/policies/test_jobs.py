"""Policies as jobs (a finetune_jobs profile): queued in rounds by the lab, trained by the train
command (one process or two under accelerate), resumed after a crash, read back by the lab."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_rung, free_port

from w2s_helpers.core import launch, profiles
from w2s_helpers.policies import jobs, training
from w2s_helpers.policies.lab import PendingRuns, PolicyLab
from w2s_helpers.policies.policy import WholePolicy, sequence_logps

from .stand_ins import PAIRS

CONFIG = training.POConfig.for_loss("dpo", lora_r=0, batch_size=6, po_epochs=4, sft_epochs=1, po_lr=1e-2,
                                    sft_lr=1e-2, warmup=0.0)
ATOL = 1e-4        # two processes against one: seen equal to ~1e-6 (the order of a sum)


def _profile(folders, jobs_on=True):
    rung = tiny_rung(folders, "gpt2")
    po = profiles.POSettings(weak=rung, strong=rung, n_train=6, n_test=5, n_helpful=3, max_prompt=8,
                             max_response=8, regime="whole", lora_r=0, engine="trl", batch_size=6)
    return profiles.get("ci").replace(po=po, finetune_jobs=jobs_on)


def _lab(folders, jobs_on=True):
    lab = PolicyLab(_profile(folders, jobs_on), progress=False)
    lab.pools = {"gt": PAIRS, "w2s": PAIRS, "test": PAIRS[:5], "helpful": PAIRS[:3]}   # short pairs
    return lab


def _rounds(lab):
    """The chapter's design: a weak policy, then a student on its labels of w2s (two rounds)."""
    with lab.queue():
        weak = lab.run(lab.S.weak, CONFIG, [("gt", None, True)], score=("w2s", "test"))
        return lab.run(lab.S.strong, CONFIG.replace(seed=1), [("w2s", None, weak.correct("w2s", "dpo"))],
                       conflict=torch.ones(6, dtype=torch.bool))


def test_a_policy_job_survives_its_file_and_a_bad_line_is_named(tmp_path):
    job = jobs.PolicyJob(key="k1", profile="ci", rung="smollm2-135m", settings={"weak": "a"}, config={"loss": "dpo"},
                         pools="p", parts=(("w2s", (0, 2), (True, False)),), conflict=(True, True), score=("test",))
    path = tmp_path / "policies.jsonl"
    assert jobs.append(path, job) and not jobs.append(path, job)
    assert jobs.read_jobs(path) == [job] and launch.kind_of(path) == "policy"
    path.write_text(path.read_text() + '{"kind": "policy", "key": "k2"}\n')
    with pytest.raises(ValueError, match=r"policies.jsonl:2: not a policy job"):
        jobs.read_jobs(path)


def test_the_lab_queues_in_rounds_and_reads_what_the_jobs_trained(tiny_hub_folders, isolated_cache):
    lab = _lab(tiny_hub_folders)
    with pytest.raises(PendingRuns, match=r"1 policies are queued .*1 more runs need their labels first"
                                          r"(.|\n)*accelerate launch"):
        _rounds(lab)
    assert lab._loaded == {}                                   # queueing loads no weights
    path = lab.jobs_path()
    assert len(jobs.run_file(path)) == 1                       # round 1: the weak policy
    with pytest.raises(PendingRuns, match="1 policies are queued in"):
        _rounds(lab)
    assert jobs.status(jobs.read_jobs(path)) == {"finished": 1, "interrupted": 0, "not started": 1}
    assert len(jobs.run_file(path)) == 1 and jobs.run_file(path) == []    # round 2, then nothing left
    student = _rounds(lab)
    assert not student.pending and student.logps["test"].shape == (5, 2)
    # the same run trained in the notebook's process (no jobs): the same numbers
    direct = _rounds(_lab(tiny_hub_folders, jobs_on=False))
    before = _lab(tiny_hub_folders, jobs_on=False)
    untrained = sequence_logps(WholePolicy(before.loaded(before.S.strong).model), before.data(before.S.strong, "test"))
    moved = (direct.logps["test"] - untrained).abs().max().item()
    assert moved > 0.1
    torch.testing.assert_close(student.logps["test"], direct.logps["test"], rtol=0, atol=1e-6)


def test_a_queued_run_outside_a_queue_block_stops_with_the_command(tiny_hub_folders, isolated_cache):
    lab = _lab(tiny_hub_folders)
    with pytest.raises(PendingRuns, match="train --jobs"):
        lab.run(lab.S.weak, CONFIG, [("gt", None, True)])
    with pytest.raises(ValueError, match="label is None"):
        _lab(tiny_hub_folders, jobs_on=False).run(lab.S.weak, CONFIG, [("gt", None, None)])


def _one_job(folders, copies=1, keep=False, watch=False):
    """The job of one run on ``copies`` x the six stand-in pairs (a global batch of 6)."""
    lab = _lab(folders)
    lab.pools["gt"] = PAIRS * copies
    with pytest.raises(PendingRuns):
        with lab.queue():
            lab.run(lab.S.weak, CONFIG, [("gt", None, torch.tensor([True, False, True, True, False, True] * copies))],
                    score=("test",), keep=keep, watch=watch)
    path = lab.jobs_path()
    (job,) = jobs.read_jobs(path)
    return job, path


class Crash(Exception):
    pass


def test_a_crashed_job_resumes_to_the_same_run(tiny_hub_folders, isolated_cache, monkeypatch):
    from transformers import TrainerCallback

    from w2s_helpers.policies import trl_trainers

    job, _ = _one_job(tiny_hub_folders)

    class CrashAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:        # (before step 3's checkpoint is written)
                raise Crash()

    with pytest.raises(Crash):
        jobs.run(job, save_steps=1, verbose=False, callbacks=[CrashAt()])
    folder = jobs.checkpoint_dir(job)
    assert (folder / "sft.safetensors").exists() and launch.last_checkpoint(folder / "po").name == "checkpoint-2"
    assert jobs.status([job]) == {"finished": 0, "interrupted": 1, "not started": 0}
    make_sft = trl_trainers.make_sft_trainer

    def no_sft(*a, **k):
        raise AssertionError("the finished SFT stage was trained again")

    monkeypatch.setattr(trl_trainers, "make_sft_trainer", no_sft)
    resumed = jobs.run(job, save_steps=1, verbose=False)
    assert not folder.exists()                                 # stages removed once the run is saved
    assert resumed.history["sft.loss"].numel() == 1            # the SFT stage's record came back with it
    assert resumed.history["po.loss"].numel() == 2             # updates 3 and 4: resumed from checkpoint-2
    monkeypatch.setattr(trl_trainers, "make_sft_trainer", make_sft)
    jobs.result_path(job).unlink()
    whole = jobs.run(job, verbose=False)
    assert whole.history["po.loss"].numel() == 4
    torch.testing.assert_close(resumed.logps["test"], whole.logps["test"], rtol=0, atol=1e-6)


def test_two_processes_under_accelerate_train_the_job_one_process_trains(tiny_hub_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "one"))
    job, path = _one_job(tiny_hub_folders, copies=2)          # 12 pairs: two updates of 6 per epoch
    one = jobs.run(job, verbose=False)
    pairs = launch.read_pools(job.pools)
    two_cache = tmp_path / "two"
    (two_cache / "jobs").mkdir(parents=True)
    pools = launch.pools_path(job.pools)
    (two_cache / "jobs" / pools.name).write_bytes(pools.read_bytes())
    config = Path(__file__).resolve().parents[2] / "configs" / "accelerate" / "cpu_2_processes.yaml"
    out = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                          "--main_process_port", free_port(),
                          "-m", "w2s_helpers", "train", "--jobs", str(path)],
                         env={**os.environ, "W2S_CACHE_DIR": str(two_cache), "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 process(es) x 3 pairs x 1 accumulation" in out.stdout
    monkeypatch.setenv("W2S_CACHE_DIR", str(two_cache))
    two = jobs.run(job, verbose=False)                         # read back, not trained
    torch.testing.assert_close(two.logps["test"], one.logps["test"], rtol=0, atol=ATOL)
    # a wrong split would show: a global batch of 3 (or of 12, 6 per process) makes other updates
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "half"))
    half = jobs.run(dataclasses.replace(job, key="half", config={**job.config, "batch_size": 3}), pools=pairs,
                    verbose=False)
    assert (half.logps["test"] - one.logps["test"]).abs().max().item() > 100 * ATOL


def test_a_job_under_fsdp_is_refused(tiny_hub_folders, isolated_cache, monkeypatch):
    job, _ = _one_job(tiny_hub_folders)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(RuntimeError, match="do not run under FSDP"):
        jobs.run(job, verbose=False)


def test_a_run_key_is_the_same_before_and_after_the_weights_load(tiny_hub_folders, isolated_cache):
    lab = _lab(tiny_hub_folders, jobs_on=False)
    parts = [("gt", None, True)]
    before = lab._run_key(lab.S.weak, CONFIG, parts, ["test"], None)
    assert lab._loaded == {}
    lab.loaded(lab.S.weak)
    assert lab._run_key(lab.S.weak, CONFIG, parts, ["test"], None) == before


def test_a_job_asked_for_twice_keeps_and_watches_as_either_asked(tiny_hub_folders, isolated_cache):
    job, path = _one_job(tiny_hub_folders)
    assert not job.keep and not job.watch
    _one_job(tiny_hub_folders, keep=True, watch=True)          # the same run, asked by another chapter
    (wider,) = jobs.read_jobs(path)
    assert wider.key == job.key and wider.keep and wider.watch
    assert len(jobs.run_file(path)) == 1 and jobs.finished(wider)
    lab = _lab(tiny_hub_folders)
    got = lab.run(lab.S.weak, CONFIG, [("gt", None, torch.tensor([True, False, True, True, False, True]))],
                  score=("test",), keep=True, watch=True)      # read, not queued again
    assert "po.watch_accuracy" in got.history and lab.queued == set()
    jobs.result_path(wider).with_name(f"{wider.key}-blocks.safetensors").unlink()
    assert not jobs.finished(wider) and jobs.finished(job)     # a run that keeps needs its weights
