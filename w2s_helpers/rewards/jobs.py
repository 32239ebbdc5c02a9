"""Whole reward models as *jobs*: queued by a chapter, trained by ``accelerate launch``, resumable.

At the ``paper`` scale a chapter's grid of fine-tuned reward models (chapter 1: about 220) is far
too long for a notebook cell, and a crash must not mean starting over. So the ``finetune`` regime
trains through jobs:

    chapter (profile with finetune_jobs)    lab.fit -> a Job appended to a jobs file (JSON lines)
                                            and the pairs written once to a pools file
    accelerate launch -m w2s_helpers train --jobs FILE
                                            one process per GPU (DDP or FSDP); finished jobs are
                                            skipped, an interrupted one restarts from its last
                                            checkpoint; rank 0 scores the pools and writes the fit
    chapter, run again                      lab.fit reads the fit (margins per scored pool)

On a CPU the lab runs the same :func:`run` in its own process at once (``finetune_jobs`` off), so
both paths train and score the same way and a second run of a chapter reads every fit.

A job is keyed by its whole content (model, pairs, labels, seed, alpha, trainer settings and
:data:`JOBS_VERSION`): two jobs with the same key train the same model.

Batch sizes: ``batch_size`` is the **global** batch (paper: 32 pairs per update). Each of N
processes takes ``batch_size / (N x grad_accum)`` pairs per step, so one GPU, several GPUs and
gradient accumulation all make the same updates (up to floating-point order).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from w2s_helpers.core import models, store
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.core.launch import (  # noqa: F401  (shared with policy jobs; named here as before)
    BARRIER_TIMEOUT_MIN,
    append_line,
    jobs_dir,
    last_checkpoint,
    per_device_batch,
    pools_path,
    process_state,
    read_lines,
    read_pools,
    rung_from_spec,
    rung_spec,
    write_pools,
)

# Bump when training or scoring changes what a job returns: every key changes with it.
JOBS_VERSION = "1"


@dataclass(frozen=True)
class Job:
    """One whole reward model to train and score.

    rung:   a registry name, or a :class:`~w2s_helpers.core.models.Rung`'s fields (local stand-ins)
    pools:  the data hash of the pools file the indices refer to
    parts:  (pool, indices [n], chosen-first labels [n]) per part: P(chosen preferred)
    score:  pools whose margins r(chosen) - r(rejected) are saved after training
    config: what decides the updates: lr, batch_size (global), epochs, max_length, precision (the
            profile's setting, "auto", "bfloat16" or "float32", resolved on the machine that trains
            the job: bf16 mixed precision on a GPU that has it; a CPU trains in fp32). Gradient accumulation and activation
            checkpointing are chosen when the job runs (:func:`run`): they change memory only.
    """

    rung: Any
    pools: str
    parts: tuple[tuple[str, tuple[int, ...], tuple[float, ...]], ...]
    seed: int
    alpha: float
    score: tuple[str, ...]
    config: dict

    @property
    def key(self) -> str:
        from w2s_helpers.rewards.lab import FIT_VERSION     # a change to what a fit means changes every key

        revision = rung_of(self).revision          # a registry rung is stored by name: its pin, here
        return store.content_hash(JOBS_VERSION, FIT_VERSION, self.to_dict(), *([revision] if revision else []),
                                  length=20)

    @property
    def n_pairs(self) -> int:
        return sum(len(idx) for _, idx, _ in self.parts)

    @property
    def rung_name(self) -> str:
        return self.rung if isinstance(self.rung, str) else self.rung["name"]

    def to_dict(self) -> dict:
        return {"rung": self.rung, "pools": self.pools, "seed": self.seed, "alpha": self.alpha,
                "score": list(self.score), "config": dict(sorted(self.config.items())),
                "parts": [[pool, list(idx), [float(x) for x in lab]] for pool, idx, lab in self.parts]}

    @staticmethod
    def from_dict(d: dict) -> "Job":
        parts = tuple((str(pool), tuple(int(i) for i in idx), tuple(float(x) for x in lab))
                      for pool, idx, lab in d["parts"])
        for pool, idx, lab in parts:
            if len(idx) != len(lab):
                raise ValueError(f"part {pool!r}: {len(idx)} indices but {len(lab)} labels")
        return Job(rung=d["rung"], pools=str(d["pools"]), parts=parts, seed=int(d["seed"]),
                   alpha=float(d["alpha"]), score=tuple(d["score"]), config=dict(d["config"]))


def rung_of(job: Job) -> models.Rung:
    """The job's rung: looked up by name, or rebuilt from its fields."""
    return models.get_rung(rung_from_spec(job.rung))


# --------------------------------------------------------------------------- files


def jobs_file(profile: str, data_hash: str) -> Path:
    """Where a chapter at ``profile`` queues the jobs of its data (one file per profile and data)."""
    return jobs_dir() / f"{profile}-{data_hash}.jsonl"


def append(path: str | Path, job: Job) -> bool:
    """Add ``job`` to a jobs file unless a job with its key is there; returns whether it was added
    (an atomic rewrite: an interrupted chapter never leaves half a line)."""
    return append_line(path, job.to_dict(), lambda d: Job.from_dict(d).key)


def read_jobs(path: str | Path) -> list[Job]:
    """The jobs of a JSON-lines file, with a clear error naming the file and line of a bad one."""
    return read_lines(path, Job.from_dict, "a reward-model job")


def result_path(job: Job) -> Path:
    return store.cache_dir("fits") / f"{job.key}.safetensors"


def load_result(job: Job) -> dict[str, torch.Tensor] | None:
    """The scored margins of a finished job, or None."""
    path = result_path(job)
    if not path.exists():
        return None
    from safetensors.torch import load_file

    return load_file(str(path))


def _save_result(job: Job, scores: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save

    meta = {"job": json.dumps({k: v for k, v in job.to_dict().items() if k != "parts"}), "n_pairs": str(job.n_pairs)}
    store.atomic_write_bytes(result_path(job), save({k: v.contiguous() for k, v in scores.items()}, metadata=meta))


def checkpoint_dir(job: Job) -> Path:
    return store.cache_dir("checkpoints") / job.key


# --------------------------------------------------------------------------- training


def mixed_precision(config: dict, device: str) -> bool:
    """Whether a job trains in bf16 mixed precision here: on a GPU, when the job's precision setting
    resolves to bf16 on this machine (a CPU trains in fp32; a job without the setting too)."""
    from w2s_helpers.core.precision import resolve

    return device == "cuda" and resolve(str(config.get("precision", "float32")), "cuda") == "bfloat16"


def run(job: Job, pools: dict[str, list[PreferencePair]] | None = None, save_steps: int = 0, grad_accum: int = 1,
        checkpointing: bool = False, callbacks: Sequence[Any] = (), verbose: bool = True,
        cpu: bool | None = None) -> dict[str, torch.Tensor]:
    """Train one job (resuming from its last checkpoint), score its pools, save; return the margins.

    Works in one process or under ``accelerate launch`` (every process calls it; the trainer
    shards the batches, rank 0 scores and writes, the others wait). ``save_steps`` > 0 writes a
    checkpoint every that many updates; the folder is removed once the fit is saved.
    ``grad_accum`` and ``checkpointing`` change memory, not the updates, so they are not part of
    the job: choose them per machine. ``cpu``: train on the CPU even where a GPU is visible (a CPU
    profile; default: the GPU when there is one). Returns {pool: delta [N_pool]} (every process gets it).
    """
    from w2s_helpers.core import work
    from w2s_helpers.rewards import finetune

    done = load_result(job)
    if done is not None:
        return done
    state = process_state(cpu)
    pools = pools if pools is not None else read_pools(job.pools)
    cfg = job.config
    use_cpu = state.device.type == "cpu"
    rm = models.load(rung_of(job), head="reward", device="cpu", dtype="float32", seed=job.seed)
    pairs = [pools[pool][i] for pool, idx, _ in job.parts for i in idx]
    labels = [x for _, _, lab in job.parts for x in lab]
    n = cfg["max_length"]
    ds = finetune.preference_dataset(rm.tokenizer, pairs, labels, max_length=n)
    per = per_device_batch(cfg["batch_size"], state.num_processes, grad_accum)
    tc = finetune.FinetuneConfig(lr=cfg["lr"], batch_size=per, epochs=cfg["epochs"], max_length=n, seed=job.seed,
                                 alpha=job.alpha, use_cpu=use_cpu, bf16=mixed_precision(cfg, state.device.type),
                                 checkpointing=checkpointing, grad_accum=grad_accum,
                                 log_every=max(1, len(pairs) // cfg["batch_size"]))
    if not use_cpu and state.is_main_process:
        from w2s_helpers.core import memory

        print(memory.announce(job.rung_name, rm.model.config, 2 * per, n, weight_bytes=4), flush=True)
    folder = checkpoint_dir(job)
    # the job's precision, whatever the launch layout says (transformers reads this before its own flags)
    os.environ["ACCELERATE_MIXED_PRECISION"] = "bf16" if tc.bf16 else "no"
    trainer = finetune.make_trainer(rm, ds, tc, output_dir=str(folder), save_steps=save_steps)
    for cb in callbacks:
        trainer.add_callback(cb)
    resume = last_checkpoint(folder)
    if verbose and state.is_main_process:
        print(f"job {job.key}: {job.rung_name}, {len(pairs)} pairs, seed {job.seed}, alpha {job.alpha:g}, "
              f"{state.num_processes} process(es) x {per} pairs x {grad_accum} accumulation"
              + (f"; resuming from {resume.name}" if resume else ""), flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if state.num_processes > 1:
        final = folder / "final"
        trainer.save_model(str(final))                 # gathers FSDP shards into one state dict
        state.wait_for_everyone()
        del trainer                                    # its model and optimiser state, before the reload
        rm.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if state.is_main_process:
            from transformers import AutoModelForSequenceClassification

            with models.quiet_transformers():
                rm.model = AutoModelForSequenceClassification.from_pretrained(str(final), dtype=torch.float32)
            rm.model.to(state.device).eval()
    else:
        rm.model = trainer.model
    if state.is_main_process:
        if work.enabled():  # forward + backward ~ 3 forwards of the whole model over both sides
            n_tok = tc.epochs * sum(len(a) + len(b) for a, b in zip(ds["chosen_ids"], ds["rejected_ids"]))
            work.record("train-finetune", job.rung_name, 6 * work.dense_params(rm.model) * n_tok, n_tok,
                        dtype="bfloat16" if tc.bf16 else "float32")
        scores = {pool: finetune.reward_margins(rm, pools[pool], n) for pool in job.score}
        _save_result(job, scores)
        shutil.rmtree(folder, ignore_errors=True)
    state.wait_for_everyone()
    return load_result(job)


def run_file(path: str | Path, save_steps: int = 0, grad_accum: int = 1, checkpointing: bool = False) -> list[str]:
    """Every job of a jobs file, in order (finished ones skipped); returns the keys trained now."""
    state = process_state()
    todo = read_jobs(path)
    trained = []
    for i, job in enumerate(todo, start=1):
        if load_result(job) is not None:
            if state.is_main_process:
                print(f"[{i}/{len(todo)}] {job.key} done before: skipped", flush=True)
            continue
        if state.is_main_process:
            print(f"[{i}/{len(todo)}] {job.key}", flush=True)
        run(job, save_steps=save_steps, grad_accum=grad_accum, checkpointing=checkpointing)
        trained.append(job.key)
    return trained


def status(jobs: Iterable[Job]) -> dict[str, int]:
    """How many jobs are finished, interrupted (a checkpoint exists) and not started."""
    out = {"finished": 0, "interrupted": 0, "not started": 0}
    for job in jobs:
        if load_result(job) is not None:
            out["finished"] += 1
        elif last_checkpoint(checkpoint_dir(job)) is not None:
            out["interrupted"] += 1
        else:
            out["not started"] += 1
    return out
