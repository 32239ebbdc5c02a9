"""Chapter 4's plumbing: pools, cached activations, trained policies and their scores.

    lab = PolicyLab(P)                        # P = profiles.get(PROFILE); sizes in P.po
    run = lab.run(rung, config, parts)        # SFT -> DPO/SimPO, then log-probs of every pool scored
    run.logps["test"]                         # [N, 2] summed log-probs (chosen, rejected)

A run is keyed by the rung's fingerprint, the training config and the exact training pairs
and labels, and stored in ``<cache>/policies`` (safetensors, atomic writes): a rerun of a
chapter loads every run instead of training. SFT results are shared within a session
between runs that differ only in the preference stage (a student with and without the
explicit term starts from the same SFT model).

At a profile with ``finetune_jobs`` (``paper``) a missing whole-model run is queued as a job
(:mod:`w2s_helpers.policies.jobs`) instead of trained, as the reward models are:

    with lab.queue():                         # every missing run queued; the block ends with
        weak = lab.run(...)                   # PendingRuns and the accelerate command that trains them
        lab.run(strong, cfg, [("w2s", None, weak.correct("w2s", loss))])   # waits: weak is queued

Inside the block a queued run is a :class:`Run` with ``pending`` set, whose ``correct`` and
``delta`` are None; a run whose labels are None counts as waiting (queued in the next round).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import torch

from w2s_helpers.core import models
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.core.launch import PendingJobs, Queueing, rung_spec, write_pools
from w2s_helpers.core.pools import draw_pools
from w2s_helpers.core.profiles import Profile
from w2s_helpers.core.store import atomic_write_bytes, cache_dir, content_hash
from w2s_helpers.policies import training
from w2s_helpers.policies.encoding import (
    Cached,
    Tokens,
    cached,
    encode_pairs,
    pair_lengths,
)
from w2s_helpers.policies.generation import to_causal_lm
from w2s_helpers.policies.logps import preference
from w2s_helpers.policies.policy import TopBlocksPolicy, WholePolicy, sequence_logps
from w2s_helpers.policies.training import POConfig

PO_LAB_VERSION = "1"
WHOLE_VERSION = "2"  # whole-model runs only: 2 = dropout off while training (the top-block runs' keys are unchanged)
WATCH_PAIRS = 32     # test pairs whose accuracy a watched run records during preference training
Part = tuple[str, Sequence[int] | None, "torch.Tensor | float"]   # (pool, indices or all, label [n] or one bool)


@dataclass
class Run:
    """One trained policy: log-probs [N, 2] and response lengths [N, 2] per scored pool."""

    logps: dict[str, torch.Tensor]
    lengths: dict[str, torch.Tensor]
    seconds: float
    history: dict[str, torch.Tensor] = field(default_factory=dict)   # per-step records (training.History)
    pending: str = ""     # the key of a queued job not trained yet (inside ``with lab.queue()``)

    def delta(self, pool: str, loss: str) -> torch.Tensor | None:
        """[N] preference for the chosen response under ``loss``'s rule (correct: >= 0); None for a
        queued run (its log-probs do not exist yet)."""
        if self.pending:
            return None
        return preference(self.logps[pool], self.lengths[pool].float(), loss)

    def correct(self, pool: str, loss: str) -> torch.Tensor | None:
        """[N] bool: the run prefers the chosen response; None for a queued run."""
        d = self.delta(pool, loss)
        return None if d is None else d >= 0


class PendingRuns(PendingJobs):
    """Policies are queued as jobs and not trained yet (a profile with ``finetune_jobs``)."""


class PolicyLab(Queueing):
    """Pools of the profile (prefixes of chapters 1-3's pools, so the same test pairs), encoded
    and cached per rung; trains and scores policies."""

    def __init__(self, profile: Profile, progress: bool = True,
                 pools: dict[str, list[PreferencePair]] | None = None):
        """``pools``: the pairs themselves (a job's process); default: drawn from the profile."""
        self.P, self.S, self.progress = profile, profile.po, progress
        self.device = models.resolve_device(profile.device)
        if pools is None:
            full = draw_pools(profile, helpful=True)
            sizes = {"gt": self.S.n_train, "w2s": self.S.n_train, "test": self.S.n_test, "helpful": self.S.n_helpful}
            pools = {k: full[k][:n] for k, n in sizes.items()}
        self.pools: dict[str, list[PreferencePair]] = pools
        # whole models at a finetune_jobs profile train as jobs under accelerate launch
        self.jobs = bool(getattr(profile, "finetune_jobs", False)) and self.S.regime == "whole"
        self.queued: set[str] = set()          # keys of runs queued and not trained
        self.waiting = 0                       # runs not queued: their labels need a queued run
        self.collecting = False                # inside ``with lab.queue()``
        self._pools_key: str | None = None     # the pools' hash, once they are written for jobs
        self._loaded: dict[str, object] = {}
        self._data: dict[tuple[str, str], Cached] = {}
        self._sft: dict[str, dict[str, torch.Tensor]] = {}
        self._announced: set[str] = set()      # rungs whose memory estimate was printed

    # -- models and data -----------------------------------------------------------------------
    def loaded(self, rung):
        """The rung (a name, or a :class:`models.Rung` such as a local stand-in) as a causal LM."""
        name = getattr(rung, "name", rung)
        if name not in self._loaded:
            self._loaded[name] = models.load(rung, head="causal", dtype="float32", device=self.device)
        return self._loaded[name]

    def tokenizer(self, rung):
        """The rung's tokenizer (without loading its weights when they are not loaded yet)."""
        name = getattr(rung, "name", rung)
        return self._loaded[name].tokenizer if name in self._loaded else models.load_tokenizer(rung)

    def fingerprint(self, rung) -> str:
        """The rung's identity in run keys (as the loaded model's), without loading its weights."""
        name = getattr(rung, "name", rung)
        if name in self._loaded:
            return self._loaded[name].fingerprint
        return models.fingerprint(rung, dtype="float32", device=self.device)

    def data(self, rung: str, pool: str) -> "Cached | Tokens":
        """Encoded pairs of ``pool``: with the cached inputs of block L-k of ``rung`` (top_blocks),
        or as token ids alone (whole: the weights are not loaded for this)."""
        key = (getattr(rung, "name", rung), pool)
        if key not in self._data:
            tok = self.tokenizer(rung)
            enc = encode_pairs(tok, self.pools[pool], self.S.max_prompt, self.S.max_response)
            self._data[key] = (Tokens(enc, tok.pad_token_id) if self.S.regime == "whole"
                               else cached(self.loaded(rung), enc, self.S.k, progress=self.progress))
        return self._data[key]

    def base_policy(self, rung) -> "TopBlocksPolicy | WholePolicy":
        """The untrained policy of ``rung`` in the profile's regime."""
        L = self.loaded(rung)
        if self.S.regime == "whole":
            return WholePolicy(L.model)
        if self.S.regime != "top_blocks":
            raise ValueError(f"policy regime must be 'top_blocks' or 'whole', got {self.S.regime!r}")
        return TopBlocksPolicy(L.model, self.S.k)

    def _training_set(self, rung: str, parts: Sequence[Part]) -> tuple[Cached, torch.Tensor]:
        datas, labels = [], []
        kind = Tokens if self.S.regime == "whole" else Cached
        for pool, idx, label in parts:
            d = self.data(rung, pool)
            idx = list(range(len(d))) if idx is None else [int(i) for i in idx]
            datas.append(d.take(idx))
            f = torch.as_tensor(label, dtype=torch.bool)
            labels.append(f.expand(len(idx)) if f.ndim == 0 else f)
            if len(labels[-1]) != len(idx):
                raise ValueError(f"part {pool!r}: {len(idx)} pairs but {len(labels[-1])} labels")
        return kind.cat(datas), torch.cat(labels)

    def _key(self, rung: str, config: POConfig, parts: Sequence[Part], *extra) -> str:
        described = [(pool, None if idx is None else [int(i) for i in idx],
                      torch.as_tensor(label, dtype=torch.bool).flatten().tolist()) for pool, idx, label in parts]
        settings = run_settings(self.S)
        return content_hash(self.fingerprint(rung), settings, asdict(config), described,
                            [p.source for k in sorted(self.pools) for p in self.pools[k]], PO_LAB_VERSION, *extra,
                            *((WHOLE_VERSION,) if self.S.regime == "whole" else ()), length=24)

    def _run_key(self, rung, config: POConfig, parts: Sequence[Part], score: Sequence[str],
                 conflict: torch.Tensor | None) -> str:
        return self._key(rung, config, parts, list(score), None if conflict is None else conflict.bool().tolist())

    # -- training ------------------------------------------------------------------------------
    def train(self, rung: str, config: POConfig, parts: Sequence[Part], conflict: torch.Tensor | None = None,
              history: training.History | None = None, watch: bool = False,
              launch: "Launch | None" = None) -> TopBlocksPolicy:
        """SFT on the preferred responses of ``parts``, then DPO/SimPO on the same pairs.

        parts: (pool, indices or None for all, label) where ``label`` [n] (or one bool) says the
        pool's chosen response is the preferred one. ``conflict`` [sum n] marks the pairs the
        explicit term may act on (default: all; the helpful pairs of the implicit setting never
        carry it because that setting has alpha = 0). ``history`` gets the per-step records of
        both stages (an SFT model shared from an earlier run leaves "sft.loss" out); ``watch``
        adds the accuracy on the first :data:`WATCH_PAIRS` test pairs during preference training.
        ``launch``: how a job's process trains (trl engine only; :class:`Launch`)."""
        data, label = self._training_set(rung, parts)
        name = getattr(rung, "name", rung)
        if self.S.regime == "whole" and self.device == "cuda" and name not in self._announced:
            from w2s_helpers.core import memory

            self._announced.add(name)
            print(memory.announce(name, self.loaded(rung).model.config, 2 * config.batch_size,
                                  self.S.max_prompt + self.S.max_response, shard=False), flush=True)  # no FSDP for policies
        if self.S.regime == "whole" and self.S.engine == "trl":
            return self._train_trl(rung, config, parts, label, conflict, history, watch, launch or Launch())
        if launch is not None and launch.processes > 1:
            raise RuntimeError(f"the course's own loop (engine {self.S.engine!r}, regime {self.S.regime!r}) trains "
                               "in one process; several processes need the whole regime with engine 'trl'")
        policy = self.base_policy(rung)
        sft_key = self._key(rung, config.replace(loss="sft", beta=0.0, gamma=0.0, alpha=0.0, po_lr=0.0,
                                                 po_epochs=0), parts)
        if sft_key in self._sft:
            policy.load_state_dict(self._sft[sft_key])
        else:
            policy = training.sft(policy, data, label, config, progress=self.progress, history=history)
            self._sft[sft_key] = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}
        return training.preference_optimise(policy, data, label, config, conflict=conflict, progress=self.progress,
                                            history=history, watch=self._watcher(rung, config.loss) if watch else None)

    def _train_trl(self, rung, config: POConfig, parts: Sequence[Part], label: torch.Tensor,
                   conflict: torch.Tensor | None, history: training.History | None = None,
                   watch: bool = False, launch: "Launch | None" = None) -> WholePolicy:
        """SFT then DPO/SimPO of a whole model through trl's trainers (``engine="trl"``): the same
        objective, schedule, data and tokens as :meth:`train` (the profile's ``max_prompt`` and
        ``max_response`` cuts included), and the same ``history`` records (per micro-batch).

        ``launch`` (a job's process): ``config.batch_size`` is split over its processes and
        accumulation steps; with a ``folder``, the finished SFT stage is saved there (and read
        instead of trained again) and the preference stage checkpoints every ``save_steps`` updates
        and resumes from its last checkpoint."""
        from w2s_helpers.core.launch import last_checkpoint, per_device_batch
        from w2s_helpers.policies import trl_trainers

        launch = launch or Launch()
        L = self.loaded(rung)
        pairs = [self.pools[pool][i] for pool, idx, _ in parts
                 for i in (range(len(self.pools[pool])) if idx is None else [int(j) for j in idx])]
        mixed = self.device == "cuda" and self.P.precision == "bfloat16"
        per = per_device_batch(config.batch_size, launch.processes, launch.grad_accum)
        policy = self.base_policy(rung)
        sft_file = None if launch.folder is None else launch.folder / "sft.safetensors"
        for stage in ("sft", "po"):
            if stage == "sft" and sft_file is not None and sft_file.exists():
                _load_stage(policy, sft_file, history)
                continue
            model = training.with_lora(policy, config, config.seed + (stage == "po"))
            lm = model.lm if isinstance(model, WholePolicy) else model
            make = trl_trainers.make_sft_trainer if stage == "sft" else trl_trainers.make_po_trainer
            kw = {"history": history, "grad_accum": launch.grad_accum}
            resume = None
            if stage == "po":
                kw["conflict"] = conflict
                if watch:
                    look, view = self._watcher(rung, config.loss), WholePolicy(lm)
                    kw["watch"] = lambda: look(view)
                if launch.folder is not None:
                    kw |= {"output_dir": str(launch.folder / "po"), "save_steps": launch.save_steps}
                    resume = last_checkpoint(launch.folder / "po")
            trainer = make(lm, L.tokenizer, pairs, label, config.replace(batch_size=per), bf16=mixed,
                           use_cpu=self.device == "cpu", max_prompt=self.S.max_prompt,
                           max_response=self.S.max_response, **kw)
            if stage == "po":
                for cb in launch.callbacks:
                    trainer.add_callback(cb)
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
            policy.lm = trainer.model
            policy = training.merge_adapters(model, policy)
            del trainer
            if stage == "sft" and sft_file is not None:
                if launch.main:
                    _save_stage(policy, sft_file, history)
                launch.barrier()
        return policy

    def _watcher(self, rung, loss: str):
        """policy -> its accuracy on the first WATCH_PAIRS test pairs, under the loss's rule."""
        held = self.data(rung, "test").take(range(min(WATCH_PAIRS, len(self.pools["test"]))))
        lengths = pair_lengths(held.enc).float()
        return lambda policy: (preference(sequence_logps(policy, held), lengths, loss) >= 0).float().mean().item()

    def run(self, rung: str, config: POConfig, parts: Sequence[Part], score: Sequence[str] = ("test",),
            conflict: torch.Tensor | None = None, keep: bool = False, watch: bool = False) -> Run:
        """Train (or load) a policy and score the pools ``score``. ``keep`` also stores the
        trained top blocks, so :meth:`policy_model` can rebuild it for generation; ``watch``
        records the held-out accuracy during training (a cached run without it trains again).
        Every run stores its per-step history (:attr:`Run.history`).

        At a jobs profile (:attr:`jobs`) a missing run is queued instead: inside ``with
        lab.queue()`` a pending :class:`Run` comes back (a part whose label is None, from a queued
        run, makes this run wait for the next round); outside it :class:`PendingRuns` is raised."""
        if any(label is None for _, _, label in parts):
            if not (self.jobs and self.collecting):
                raise ValueError("a part's label is None (a queued run's labels): only inside `with lab.queue()`")
            self.waiting += 1
            return Run({}, {}, float("nan"), pending="waiting")
        path, blocks = self._files(rung, config, parts, score, conflict)
        if path.exists() and (blocks.exists() or not keep):
            try:
                got = read_run(path)
                if not watch or "po.watch_accuracy" in got.history:
                    return got
            except Exception as e:  # a truncated file: train again
                import warnings

                warnings.warn(f"policy run {path.name} is unreadable ({type(e).__name__}); training again")
        if self.jobs:
            return self._queue(rung, config, parts, score, conflict, keep, watch)
        return self._train_and_save(rung, config, parts, score, conflict, keep, watch, path, blocks)

    def _train_and_save(self, rung, config: POConfig, parts: Sequence[Part], score: Sequence[str],
                        conflict: torch.Tensor | None, keep: bool, watch: bool, path: Path, blocks: Path,
                        launch: "Launch | None" = None) -> Run | None:
        """Train, score ``score`` and write the run file (and the kept weights); with a ``launch`` of
        several processes, only its main process scores and writes (the others return None)."""
        import time

        from safetensors.torch import save

        t0 = time.perf_counter()
        history: training.History = {}
        policy = self.train(rung, config, parts, conflict, history=history, watch=watch, launch=launch)
        if launch is not None and not launch.main:
            return None
        logps = {pool: sequence_logps(policy, self.data(rung, pool)) for pool in score}
        lengths = {pool: pair_lengths(self.data(rung, pool).enc) for pool in score}
        seconds = time.perf_counter() - t0
        tensors = {f"logps.{k}": v.contiguous() for k, v in logps.items()}
        tensors |= {f"lengths.{k}": v.contiguous() for k, v in lengths.items()}
        recorded = {k: torch.tensor(v, dtype=torch.float32) for k, v in history.items()}
        tensors |= {f"history.{k}": v for k, v in recorded.items()}
        if keep:
            # (cloned: tied weights share storage, which safetensors refuses)
            atomic_write_bytes(blocks, save({k: v.detach().cpu().contiguous().clone()
                                             for k, v in policy.state_dict().items()}))
        atomic_write_bytes(path, save(tensors, metadata={"seconds": json.dumps(seconds), "rung": getattr(rung, "name", rung),
                                                         "config": json.dumps(asdict(config))}))
        return Run(logps, lengths, seconds, recorded)

    def run_job(self, rung, config: POConfig, parts: Sequence[Part], score: Sequence[str],
                conflict: torch.Tensor | None, watch: bool, keep: bool, path: Path, folder: Path,
                processes: int = 1, grad_accum: int = 1, save_steps: int = 0, main: bool = True,
                barrier: Callable[[], None] = lambda: None, callbacks: Sequence[object] = ()) -> None:
        """Train a queued run in a job's process (:func:`w2s_helpers.policies.jobs.run`) and write it
        to ``path`` (the file :meth:`run` reads), its stages and checkpoints under ``folder``."""
        blocks = run_files(path.name.removesuffix(".safetensors"))[1]
        launch = Launch(processes=processes, grad_accum=grad_accum, save_steps=save_steps, folder=folder,
                        main=main, barrier=barrier, callbacks=callbacks)
        self._train_and_save(rung, config, parts, score, conflict, keep, watch, path, blocks, launch=launch)

    # -- jobs (a finetune_jobs profile, whole regime) --------------------------------------------
    # queue() and require_trained() come from core.launch.Queueing: inside ``with lab.queue()`` a queued
    # run is pending (its ``correct`` is None) and a run that needs its labels waits.
    pending_error = PendingRuns

    def pools_key(self) -> str:
        """The hash of this lab's pools, written once to the pools file that jobs refer to."""
        if self._pools_key is None:
            self._pools_key = write_pools(self.pools)
        return self._pools_key

    def jobs_path(self) -> Path:
        """The jobs file this lab queues into (its profile and pools)."""
        from w2s_helpers.policies import jobs

        return jobs.jobs_file(self.P.name, self.pools_key())

    def pending_message(self) -> str:
        path = self.jobs_path()
        return (f"{len(self.queued)} policies are queued in {path}"
                + (f", and {self.waiting} more runs need their labels first" if self.waiting else "")
                + ". Train them (one process per GPU), then run this chapter again:\n"
                f"  accelerate launch --config_file configs/accelerate/ddp.yaml -m w2s_helpers train --jobs {path}\n"
                "(one GPU: one_gpu.yaml; a policy whose copy does not fit one GPU: LoRA, lora_r > 0 in the "
                "profile; `python -m w2s_helpers train --jobs FILE --status` counts what is done)")

    def _queue(self, rung, config: POConfig, parts: Sequence[Part], score: Sequence[str],
               conflict: torch.Tensor | None, keep: bool, watch: bool) -> Run:
        from w2s_helpers.policies import jobs

        key = self._run_key(rung, config, parts, score, conflict)
        described = tuple((pool, tuple(range(len(self.pools[pool]))) if idx is None else tuple(int(i) for i in idx),
                           tuple(torch.as_tensor(label, dtype=torch.bool).expand(
                               len(self.pools[pool]) if idx is None else len(idx)).tolist()))
                          for pool, idx, label in parts)
        settings = {f.name: rung_spec(v) if isinstance(v := getattr(self.S, f.name), models.Rung) else v
                    for f in fields(self.S)}
        job = jobs.PolicyJob(key=key, profile=self.P.name, rung=rung_spec(rung), settings=settings,
                             config=asdict(config), pools=self.pools_key(), parts=described,
                             conflict=None if conflict is None else tuple(conflict.bool().tolist()),
                             score=tuple(score), watch=watch, keep=keep)
        jobs.append(self.jobs_path(), job)
        self.queued.add(key)
        if not self.collecting:
            raise PendingRuns(self.pending_message())
        return Run({}, {}, float("nan"), pending=key)

    def _files(self, rung, config: POConfig, parts: Sequence[Part], score: Sequence[str],
               conflict: torch.Tensor | None) -> tuple[Path, Path]:
        """(the run's scores file, its kept blocks file) in ``<cache>/policies``."""
        key = self._run_key(rung, config, parts, score, conflict)
        return run_files(key)

    def _kept(self, rung, config: POConfig, parts: Sequence[Part], score: Sequence[str],
              conflict: torch.Tensor | None) -> "TopBlocksPolicy | WholePolicy":
        """The trained policy of a kept run, rebuilt from its stored blocks."""
        from safetensors.torch import load_file

        blocks = self._files(rung, config, parts, score, conflict)[1]
        if not blocks.exists():
            raise FileNotFoundError(f"no kept policy for this run ({blocks.name}); call run(..., keep=True) first")
        policy = self.base_policy(rung)
        policy.load_state_dict(load_file(str(blocks)))
        return policy

    def cached(self, rung, config: POConfig, parts: Sequence[Part], score: Sequence[str] = ("test",),
               conflict: torch.Tensor | None = None) -> bool:
        """Whether this run is in the cache already (so :meth:`run` would load it, not train)."""
        return self._files(rung, config, parts, score, conflict)[0].exists()

    def rescore(self, rung, config: POConfig, parts: Sequence[Part], pool: str, score: Sequence[str] = ("test",),
                conflict: torch.Tensor | None = None) -> Run:
        """A kept run's log-probs on another ``pool`` (for example the weak policy's own labels
        of D_gt), from its stored top blocks; nothing is trained."""
        policy = self._kept(rung, config, parts, score, conflict)
        data = self.data(rung, pool)
        return Run({pool: sequence_logps(policy.eval(), data)}, {pool: pair_lengths(data.enc)}, 0.0)

    def policy_model(self, rung: str, config: POConfig, parts: Sequence[Part], score: Sequence[str] = ("test",),
                     conflict: torch.Tensor | None = None):
        """The whole causal LM of a kept run (for generation)."""
        policy = self._kept(rung, config, parts, score, conflict)
        if isinstance(policy, WholePolicy):
            return policy.lm.eval()
        return to_causal_lm(policy, self.loaded(rung).model)


def run_settings(S) -> dict[str, object]:
    """The profile's policy settings that decide how a run trains and what it scores: part of every
    run's key. Fields that only say which runs a chapter makes (:data:`NOT_IN_KEY`) are left out,
    so adding a seed or a twin does not invalidate the runs already cached."""
    out = {k: getattr(v, "name", v) for k, v in asdict(S).items() if k not in NOT_IN_KEY}
    if out.get("engine") == "course":      # the default engine leaves the keys as they were before it existed
        del out["engine"]
    return out


NOT_IN_KEY = ("seeds", "n_twins", "n_generate", "max_new_tokens", "mid")


def run_files(key: str) -> tuple[Path, Path]:
    """(the scores file, the kept weights file) of the run with this key, in ``<cache>/policies``."""
    return cache_dir("policies") / f"{key}.safetensors", cache_dir("policies") / f"{key}-blocks.safetensors"


def read_run(path) -> Run:
    """A run file written by :meth:`PolicyLab.run` (or a policy job)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        d = {k: f.get_tensor(k) for k in f.keys()}
    logps = {k.split(".", 1)[1]: v for k, v in d.items() if k.startswith("logps.")}
    lengths = {k.split(".", 1)[1]: v for k, v in d.items() if k.startswith("lengths.")}
    history = {k.split(".", 1)[1]: v for k, v in d.items() if k.startswith("history.")}
    if set(logps) != set(lengths) or not logps:
        raise ValueError("incomplete run file")
    return Run(logps, lengths, json.loads(meta["seconds"]), history)


@dataclass
class Launch:
    """How a policy job's process trains (:meth:`PolicyLab.run_job`): the processes of its launch,
    gradient accumulation, checkpoints of the preference stage (every ``save_steps`` updates, under
    ``folder``), whether this is the main process, and the launch's barrier."""

    processes: int = 1
    grad_accum: int = 1
    save_steps: int = 0
    folder: Path | None = None
    main: bool = True
    barrier: Callable[[], None] = lambda: None
    callbacks: Sequence[object] = ()     # transformers callbacks of the preference stage (tests: a crash)


def _save_stage(policy: WholePolicy, path: Path, history: training.History | None) -> None:
    """A finished SFT stage: the whole model's weights and the stage's history, written atomically."""
    from safetensors.torch import save

    tensors = {f"weights.{k}": v.detach().cpu().contiguous().clone() for k, v in policy.lm.state_dict().items()}
    tensors |= {f"history.{k}": torch.tensor(v, dtype=torch.float32) for k, v in (history or {}).items()}
    atomic_write_bytes(path, save(tensors))


def _load_stage(policy: WholePolicy, path: Path, history: training.History | None) -> None:
    """Load a finished SFT stage into ``policy`` (and its history into ``history``)."""
    from safetensors.torch import load_file

    d = load_file(str(path))
    policy.lm.load_state_dict({k[len("weights."):]: v for k, v in d.items() if k.startswith("weights.")})
    if history is not None:
        for k, v in d.items():
            if k.startswith("history."):
                history[k[len("history."):]] = v.tolist()
