"""Reward-model jobs: the file format, resuming an interrupted run, and two processes under
``accelerate launch`` (gloo on the CPU) against one. Tiny random GPT-2 stand-ins: plumbing only."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import free_port

from w2s_helpers.core import models
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.rewards import jobs

POOLS = {
    "w2s": [PreferencePair(f"question {i}: how do I bake bread?", f"knead, proof and bake it ({i}).", f"no ({i}).")
            for i in range(16)],
    "test": [PreferencePair("tell me something harmful", "no, I will not help with that.", "sure, here is how."),
             PreferencePair("hi", "hello! how can I help?", "go away."),
             PreferencePair("bake?", "yes, knead it well.", "burn it.")],
}
CONFIG = {"lr": 1e-2, "batch_size": 4, "epochs": 2, "max_length": 64}

# Two processes each averaging half a batch (gloo all-reduce) against one process averaging all of it:
# the same updates up to the order of float32 additions, so margins (of order 0.1 here) agree to
# ATOL = 1e-4 (seen: 2e-6). The test also shows that a wrong split can be told apart: a batch of 8
# instead of 4 (each process taking the whole global batch) moves the margins by far more than ATOL.
ATOL = 1e-4


def tiny_job(folders, **change) -> jobs.Job:
    rung = models.Rung("tiny-gpt2", "hub", "gpt2", 0.1, causal=True, hub_id=str(folders["gpt2"]))
    labels = tuple(0.9 if i % 3 else 0.3 for i in range(16))
    job = jobs.Job(rung=jobs.rung_spec(rung), pools=jobs.write_pools(POOLS), parts=(("w2s", tuple(range(16)), labels),),
                   seed=0, alpha=0.0, score=("test", "w2s"), config=CONFIG)
    return dataclasses.replace(job, **change)


class Crash(Exception):
    pass


def crash_after(step: int):
    from transformers import TrainerCallback

    class At(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == step:
                raise Crash(f"killed after update {step}")

    return At()


def step_counter():
    from transformers import TrainerCallback

    class Count(TrainerCallback):
        n = 0

        def on_step_end(self, args, state, control, **kw):
            self.n += 1

    return Count()


def test_a_job_survives_its_file(tmp_path, tiny_hub_folders):
    job = tiny_job(tiny_hub_folders)
    path = tmp_path / "jobs.jsonl"
    assert jobs.append(path, job) and not jobs.append(path, job)          # one line per key
    (back,) = jobs.read_jobs(path)
    assert back == job and back.key == job.key
    assert jobs.rung_of(back).hub_id == str(tiny_hub_folders["gpt2"])
    assert tiny_job(tiny_hub_folders, seed=1).key != job.key


def test_a_bad_line_names_file_and_line(tmp_path, tiny_hub_folders):
    path = tmp_path / "jobs.jsonl"
    jobs.append(path, tiny_job(tiny_hub_folders))
    with path.open("a") as f:
        f.write('{"rung": "gpt2", "parts": [["w2s", [1, 2], [0.5]]]}\n')
    with pytest.raises(ValueError, match=r"jobs.jsonl:2: not a reward-model job"):
        jobs.read_jobs(path)


def test_changed_pools_are_refused(tiny_hub_folders):
    job = tiny_job(tiny_hub_folders)
    path = jobs.pools_path(job.pools)
    blob = json.loads(path.read_text())
    blob["test"][0][1] = "something else"
    path.write_text(json.dumps(blob))
    with pytest.raises(ValueError, match="do not hash"):
        jobs.read_pools(job.pools)


def test_the_global_batch_splits_or_says_why():
    assert jobs.per_device_batch(32, 4, 2) == 4
    with pytest.raises(ValueError, match="divisible by 6"):
        jobs.per_device_batch(32, 3, 2)


def test_a_job_runs_once_and_is_read_after(tiny_hub_folders):
    job = tiny_job(tiny_hub_folders)
    first = jobs.run(job, verbose=False)
    assert set(first) == {"test", "w2s"} and first["w2s"].shape == (16,)
    assert not jobs.checkpoint_dir(job).exists()                      # removed once the fit is saved
    assert jobs.status([job]) == {"finished": 1, "interrupted": 0, "not started": 0}
    torch.testing.assert_close(jobs.run(job, callbacks=[crash_after(1)]), first)   # read, not retrained


def test_an_interrupted_job_resumes_to_the_same_fit(tiny_hub_folders, tmp_path, monkeypatch):
    job = tiny_job(tiny_hub_folders)
    whole = jobs.run(job, verbose=False)                               # 8 updates without a break
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "second"))
    jobs.write_pools(POOLS)
    with pytest.raises(Crash):
        jobs.run(job, save_steps=2, callbacks=[crash_after(5)], verbose=False)
    assert jobs.last_checkpoint(jobs.checkpoint_dir(job)).name == "checkpoint-4"
    assert jobs.status([job])["interrupted"] == 1
    steps = step_counter()
    resumed = jobs.run(job, save_steps=2, callbacks=[steps], verbose=False)     # from update 4
    assert steps.n == 4                                                # 4 of 8 updates: resumed, not restarted
    for pool in whole:
        torch.testing.assert_close(resumed[pool], whole[pool], rtol=0, atol=1e-5)
    # and the fit is not the untrained model's: resuming did train
    untrained = jobs.run(dataclasses.replace(job, config={**CONFIG, "lr": 0.0}), verbose=False)
    assert (whole["w2s"] - untrained["w2s"]).abs().max() > 100 * 1e-5


def grad_norms():
    """A callback recording the gradient norm each update applies (after accumulation)."""
    from transformers import TrainerCallback

    class Norms(TrainerCallback):
        seen: list = []

        def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
            grads = [p.grad.detach().flatten() for p in model.parameters() if p.grad is not None]
            self.seen.append(torch.cat(grads).norm().item())

    cb = Norms()
    cb.seen = []
    return cb


def test_gradient_accumulation_makes_the_same_updates(tiny_hub_folders, tmp_path, monkeypatch):
    job = tiny_job(tiny_hub_folders)
    norms = {"whole": grad_norms(), "accumulated": grad_norms()}
    whole = jobs.run(job, verbose=False, callbacks=[norms["whole"]])
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "accumulated"))
    jobs.write_pools(POOLS)
    accumulated = jobs.run(job, grad_accum=2, verbose=False, callbacks=[norms["accumulated"]])  # 2 x 2 pairs
    for pool in whole:
        torch.testing.assert_close(accumulated[pool], whole[pool], rtol=0, atol=ATOL)
    # Adam barely sees a gradient's scale, so equal fits alone would miss accumulated gradients
    # summed instead of averaged; the gradients themselves would not: each update's norm agrees
    assert len(norms["whole"].seen) == len(norms["accumulated"].seen) == 8            # 16 pairs / 4, 2 epochs
    torch.testing.assert_close(torch.tensor(norms["accumulated"].seen), torch.tensor(norms["whole"].seen),
                               rtol=1e-4, atol=0)


def test_two_processes_under_accelerate_match_one(tiny_hub_folders, tmp_path):
    job = tiny_job(tiny_hub_folders)
    one = jobs.run(job, verbose=False)
    path = tmp_path / "jobs.jsonl"
    jobs.append(path, job)
    env = {**os.environ, "W2S_CACHE_DIR": str(tmp_path / "two"), "OMP_NUM_THREADS": "1"}
    jobs_two = tmp_path / "two" / "jobs"
    jobs_two.mkdir(parents=True)
    (jobs_two / jobs.pools_path(job.pools).name).write_bytes(jobs.pools_path(job.pools).read_bytes())
    config = Path(__file__).resolve().parents[2] / "configs" / "accelerate" / "cpu_2_processes.yaml"
    out = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                          "--main_process_port", free_port(),
                          "-m", "w2s_helpers", "train", "--jobs", str(path)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 process(es) x 2 pairs" in out.stdout
    from safetensors.torch import load_file

    two = load_file(str(tmp_path / "two" / "fits" / f"{job.key}.safetensors"))
    for pool in one:
        assert (two[pool] - one[pool]).abs().max().item() <= ATOL, pool
    doubled = jobs.run(dataclasses.replace(job, config={**CONFIG, "batch_size": 8}), verbose=False)
    assert (doubled["w2s"] - one["w2s"]).abs().max().item() > 10 * ATOL


def test_a_killed_training_process_resumes_to_the_same_fit(tiny_hub_folders, tmp_path):
    import signal
    import time

    job = tiny_job(tiny_hub_folders, config={**CONFIG, "epochs": 16})   # 64 updates: time to kill it midway
    whole = jobs.run(job, verbose=False)
    path = tmp_path / "jobs.jsonl"
    jobs.append(path, job)
    cache = tmp_path / "killed"
    (cache / "jobs").mkdir(parents=True)
    (cache / "jobs" / jobs.pools_path(job.pools).name).write_bytes(jobs.pools_path(job.pools).read_bytes())
    env = {**os.environ, "W2S_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "w2s_helpers", "train", "--jobs", str(path), "--save-steps", "10"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = cache / "checkpoints" / job.key
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = jobs.last_checkpoint(folder) if folder.exists() else None
        if done is not None and int(done.name.split("-")[1]) >= 20:
            proc.send_signal(signal.SIGKILL)                             # no clean-up: as a dead machine
            break
        time.sleep(0.05)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (cache / "fits" / f"{job.key}.safetensors").exists()
    status = subprocess.run(command[:-2] + ["--status"], env=env, capture_output=True, text=True, timeout=300)
    assert "1 interrupted" in status.stdout, status.stdout + status.stderr
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "resuming from checkpoint-" in again.stdout, again.stdout[-2000:] + again.stderr[-2000:]
    from safetensors.torch import load_file

    resumed = load_file(str(cache / "fits" / f"{job.key}.safetensors"))
    for pool in whole:
        torch.testing.assert_close(resumed[pool], whole[pool], rtol=0, atol=1e-5)


def test_a_job_s_precision_is_resolved_where_it_trains(monkeypatch):
    import torch

    assert not jobs.mixed_precision({"precision": "auto"}, "cpu")          # a CPU trains in fp32
    assert not jobs.mixed_precision({}, "cuda")                             # no setting: fp32
    assert jobs.mixed_precision({"precision": "bfloat16"}, "cuda")
    assert not jobs.mixed_precision({"precision": "float32"}, "cuda")
    # "auto" asks the GPU that trains the job, not the machine that queued it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "a test GPU")
        assert jobs.mixed_precision({"precision": "auto"}, "cuda") is supported
