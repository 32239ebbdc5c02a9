"""Whole policies as *jobs*: queued by chapter 4, trained by ``accelerate launch``, resumable.

At the ``paper`` scale a policy is a whole causal LM (Mistral-7B as the strong one) trained by
trl's trainers (SFT, then DPO or SimPO), which a notebook cell cannot hold. As with the reward
models (:mod:`w2s_helpers.rewards.jobs`), a chapter at a profile with ``finetune_jobs`` queues each
missing run instead of training it:

    chapter (PolicyLab.run, whole regime)   a PolicyJob appended to a policies jobs file (JSON lines),
                                            the pairs written once to a pools file
    accelerate launch -m w2s_helpers train --jobs FILE
                                            one process per GPU (DDP); finished jobs are skipped; an
                                            interrupted one keeps its finished SFT stage and resumes
                                            the preference stage from its last checkpoint; rank 0
                                            scores the pools and writes the run
    chapter, run again                      PolicyLab.run reads the run file (the same file a run
                                            trained in the notebook writes)

A job carries the lab's run key (:meth:`PolicyLab._run_key`: the rung's fingerprint, the profile's
policy settings, the config, the exact pairs and labels, the scored pools) and everything needed to
train it without the chapter: the rung, the settings, the pools' hash, the parts with their labels.

Batch sizes: ``config["batch_size"]`` is the **global** batch per update; each of N processes takes
``batch_size / (N x grad_accum)`` pairs per step, so one GPU, several and gradient accumulation make
the same updates (up to floating-point order). FSDP is refused: rank 0 scores alone, which a
sharded model cannot do; a policy that does not fit one GPU trains with LoRA (``lora_r`` > 0).
"""

from __future__ import annotations

import dataclasses
import gc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from w2s_helpers.core import launch, store

# Bump when the way a job trains changes what it returns (the run key is the lab's; this only
# marks the job file's layout).
POLICY_JOBS_VERSION = "1"


@dataclass(frozen=True)
class PolicyJob:
    """One whole policy to train (SFT then DPO/SimPO) and score.

    key:      the lab's run key: the run file ``<cache>/policies/<key>.safetensors``
    profile:  the profile's name (its precision is resolved on the machine that trains)
    rung:     a registry name, or a :class:`~w2s_helpers.core.models.Rung`'s fields (local stand-ins)
    settings: the profile's policy settings (``POSettings`` fields, rungs by name)
    config:   the run's ``POConfig`` fields (``batch_size``: the global batch per update)
    pools:    the hash of the pools file the indices refer to
    parts:    (pool, indices [n], labels [n] bool: the chosen response is preferred)
    conflict: [sum n] the pairs the explicit term may act on, or None (all)
    score:    pools whose log-probs are saved; watch: record the held-out accuracy; keep: save the weights
    """

    key: str
    profile: str
    rung: Any
    settings: dict
    config: dict
    pools: str
    parts: tuple[tuple[str, tuple[int, ...], tuple[bool, ...]], ...]
    conflict: tuple[bool, ...] | None
    score: tuple[str, ...]
    watch: bool = False
    keep: bool = False

    @property
    def rung_name(self) -> str:
        return self.rung if isinstance(self.rung, str) else self.rung["name"]

    @property
    def n_pairs(self) -> int:
        return sum(len(idx) for _, idx, _ in self.parts)

    def to_dict(self) -> dict:
        return {"kind": "policy", "version": POLICY_JOBS_VERSION, "key": self.key, "profile": self.profile,
                "rung": self.rung, "settings": self.settings, "config": self.config, "pools": self.pools,
                "parts": [[pool, list(idx), [bool(x) for x in lab]] for pool, idx, lab in self.parts],
                "conflict": None if self.conflict is None else [bool(x) for x in self.conflict],
                "score": list(self.score), "watch": self.watch, "keep": self.keep}

    @staticmethod
    def from_dict(d: dict) -> "PolicyJob":
        if d.get("kind") != "policy":
            raise ValueError(f"kind is {d.get('kind')!r}, not 'policy'")
        parts = tuple((str(pool), tuple(int(i) for i in idx), tuple(bool(x) for x in lab))
                      for pool, idx, lab in d["parts"])
        for pool, idx, lab in parts:
            if len(idx) != len(lab):
                raise ValueError(f"part {pool!r}: {len(idx)} indices but {len(lab)} labels")
        conflict = None if d["conflict"] is None else tuple(bool(x) for x in d["conflict"])
        if conflict is not None and len(conflict) != sum(len(idx) for _, idx, _ in parts):
            raise ValueError(f"{len(conflict)} conflict flags for {sum(len(i) for _, i, _ in parts)} pairs")
        return PolicyJob(key=str(d["key"]), profile=str(d["profile"]), rung=d["rung"], settings=dict(d["settings"]),
                         config=dict(d["config"]), pools=str(d["pools"]), parts=parts, conflict=conflict,
                         score=tuple(d["score"]), watch=bool(d["watch"]), keep=bool(d["keep"]))


# --------------------------------------------------------------------------- files


def jobs_file(profile: str, data_hash: str) -> Path:
    """Where a chapter at ``profile`` queues the policies of its pools (one file per profile and pools)."""
    return launch.jobs_dir() / f"policies-{profile}-{data_hash}.jsonl"


def append(path: str | Path, job: PolicyJob) -> bool:
    """Add ``job`` unless a job with its key is there; returns whether it was added (atomic rewrite).
    A job already there that was queued without ``keep`` or ``watch`` gains them from this one (the
    key does not say what a run stores besides its scores: two chapters may ask for one run differently)."""
    path = Path(path)
    have = read_jobs(path) if path.exists() else []
    same = [j for j in have if j.key == job.key]
    if not same:
        return launch.append_line(path, job.to_dict(), lambda d: str(d.get("key")))
    old = same[0]
    wider = dataclasses.replace(old, keep=old.keep or job.keep, watch=old.watch or job.watch)
    if wider != old:
        lines = [json.dumps((wider if j.key == job.key else j).to_dict()) for j in have]
        store.atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return False


def read_jobs(path: str | Path) -> list[PolicyJob]:
    """The policy jobs of a JSON-lines file; a bad line raises an error naming the file and line."""
    return launch.read_lines(path, PolicyJob.from_dict, "a policy job")


def result_path(job: PolicyJob) -> Path:
    """The run file the lab reads (:func:`w2s_helpers.policies.lab.run_files`)."""
    from w2s_helpers.policies.lab import run_files

    return run_files(job.key)[0]


def finished(job: PolicyJob) -> bool:
    """Whether the run the lab will read is there: a readable run file, the kept weights when the job
    keeps them, the watched accuracy when it watches (what :meth:`PolicyLab.run` accepts)."""
    from w2s_helpers.policies.lab import read_run, run_files

    path, blocks = run_files(job.key)
    if not path.exists():
        return False
    if job.keep and not blocks.exists():
        return False
    try:
        got = read_run(path)
    except Exception:                   # a truncated file: train again
        return False
    return not job.watch or "po.watch_accuracy" in got.history


def checkpoint_dir(job: PolicyJob) -> Path:
    """The job's stages while it trains: ``sft.safetensors`` (the finished SFT stage) and ``po/``
    (the preference stage's trainer checkpoints); removed once the run is saved."""
    return store.cache_dir("checkpoints") / f"policy-{job.key}"


def status(jobs: list[PolicyJob]) -> dict[str, int]:
    """How many jobs are finished, interrupted (a stage or a checkpoint exists) and not started."""
    out = {"finished": 0, "interrupted": 0, "not started": 0}
    for job in jobs:
        folder = checkpoint_dir(job)
        if finished(job):
            out["finished"] += 1
        elif (folder / "sft.safetensors").exists() or launch.last_checkpoint(folder / "po") is not None:
            out["interrupted"] += 1
        else:
            out["not started"] += 1
    return out


# --------------------------------------------------------------------------- training


def fsdp_refused() -> None:
    """Policy jobs run in one process or under DDP: rank 0 scores the trained model alone."""
    from w2s_helpers.policies.trl_trainers import fsdp_launch

    if fsdp_launch():
        raise RuntimeError("policy jobs do not run under FSDP (rank 0 scores the whole model alone, which a "
                           "sharded model cannot do): launch with configs/accelerate/ddp.yaml or one_gpu.yaml, "
                           "and train a policy that does not fit one GPU with LoRA (lora_r > 0 in the profile)")


def run(job: PolicyJob, pools: dict | None = None, save_steps: int = 0, grad_accum: int = 1,
        cpu: bool | None = None, verbose: bool = True, progress: bool = False, callbacks=()):
    """Train one policy job (skipping a finished SFT stage, resuming the preference stage from its
    last checkpoint), score its pools on rank 0, save the run; return the run (every process).

    ``save_steps`` > 0 checkpoints the preference stage every that many updates; ``grad_accum``
    changes memory, not the updates. ``cpu``: train on the CPU where a GPU is visible.
    ``callbacks``: transformers callbacks of the preference stage."""
    from w2s_helpers.core import profiles
    from w2s_helpers.policies.lab import PolicyLab, read_run

    path = result_path(job)
    if finished(job):
        return read_run(path)
    fsdp_refused()
    state = launch.process_state(cpu)
    settings = dict(job.settings)
    po = profiles.POSettings(**{k: launch.rung_from_spec(v) if k in ("weak", "strong", "mid") and v is not None
                                else tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    P = profiles.get(job.profile).replace(po=po, device=state.device.type)
    lab = PolicyLab(P, progress=progress and state.is_main_process,
                    pools=pools if pools is not None else launch.read_pools(job.pools))
    from w2s_helpers.policies.training import POConfig

    config = POConfig(**job.config)
    parts = [(pool, list(idx), torch.tensor(lab_, dtype=torch.bool)) for pool, idx, lab_ in job.parts]
    conflict = None if job.conflict is None else torch.tensor(job.conflict, dtype=torch.bool)
    folder = checkpoint_dir(job)
    if verbose and state.is_main_process:
        resumed = launch.last_checkpoint(folder / "po")
        print(f"policy job {job.key}: {job.rung_name}, {config.loss}, {job.n_pairs} pairs, seed {config.seed}, "
              f"alpha {config.alpha:g}, {state.num_processes} process(es) x "
              f"{launch.per_device_batch(config.batch_size, state.num_processes, grad_accum)} pairs x {grad_accum} "
              "accumulation" + ("; SFT stage done before" if (folder / "sft.safetensors").exists() else "")
              + (f"; resuming from {resumed.name}" if resumed else ""), flush=True)
    lab.run_job(launch.rung_from_spec(job.rung), config, parts, job.score, conflict, job.watch, job.keep, path=path,
                folder=folder, processes=state.num_processes, grad_accum=grad_accum, save_steps=save_steps,
                main=state.is_main_process, barrier=state.wait_for_everyone, callbacks=callbacks)
    del lab
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    state.wait_for_everyone()
    if state.is_main_process:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return read_run(path)


def run_file(path: str | Path, save_steps: int = 0, grad_accum: int = 1) -> list[str]:
    """Every policy job of a jobs file, in order (finished ones skipped); returns the keys trained now."""
    state = launch.process_state()
    todo = read_jobs(path)
    trained = []
    for i, job in enumerate(todo, start=1):
        if finished(job):
            if state.is_main_process:
                print(f"[{i}/{len(todo)}] {job.key} done before: skipped", flush=True)
            continue
        if state.is_main_process:
            print(f"[{i}/{len(todo)}] {job.key}", flush=True)
        run(job, save_steps=save_steps, grad_accum=grad_accum)
        trained.append(job.key)
    return trained
