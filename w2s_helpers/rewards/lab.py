"""One interface over the three training regimes, so chapters write each experiment once.

    lab = lab.build(P, regime="probe")          # or "top_blocks", "finetune"
    weak = lab.ceiling("minilm-l6", seed=0, n=100)          # ground truth, 100 D_gt pairs
    soft = torch.sigmoid(lab.margins(weak, "w2s")[idx])     # the weak model's soft labels
    student = lab.fit("smollm2-135m", [("w2s", idx, soft)], seed=0)
    delta = lab.margins(student)                             # [N_test] r(chosen) - r(rejected)

Every lab draws the same fixed pools (seed 0) from the profile, so every run of every
regime is scored on the same test pairs. Labels are always given chosen-first: a label is
the probability that the *chosen* (harmless, or helpful) side is preferred; each regime
deals with slot order itself.

- :class:`ProbeLab`: a linear head on cached frozen features (standardised per rung, L2
  chosen by 5-fold CV on D_gt). A fit takes about a second.
- :class:`AdaptLab` ``top_blocks``: the top k blocks + head on cached activations
  (:mod:`w2s_helpers.rewards.top_blocks`).
- :class:`AdaptLab` ``finetune``: the whole reward model through trl's RewardTrainer
  (:mod:`w2s_helpers.rewards.finetune`); the paper's regime, for GPUs. Each fit is a job
  (:mod:`w2s_helpers.rewards.jobs`), saved once trained. At a profile with ``finetune_jobs``
  (``paper``) a missing fit is queued instead of trained: ``lab.require_trained()`` then stops
  the chapter with the ``accelerate launch`` command that trains the queue, and the next run of
  the chapter reads the fits.

Adapted fits score the requested pools right after training and then free the model, so
a grid of runs does not hold a grid of models in memory.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from dataclasses import dataclass, field
from typing import Sequence, Union

import torch

from w2s_helpers.core import data, features, models
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.core.launch import PendingJobs, Queueing
from w2s_helpers.core.pools import draw_pools
from w2s_helpers.core.profiles import Profile
from w2s_helpers.core.store import content_hash
from w2s_helpers.rewards import heads

# Bump when a regime's fitting code changes what it returns: every saved run's key changes with it
# (through :func:`fit_hash`), so no chapter reads a run computed by older code.
FIT_VERSION = "1"

Pair = tuple[torch.Tensor, torch.Tensor]  # (chosen [N, H], rejected [N, H])
Part = tuple[str, torch.Tensor, Union[torch.Tensor, float]]  # (pool, indices into it, label: P(chosen preferred))


def _defaults(fn) -> dict[str, object]:
    """The keyword defaults of ``fn``: hyper-parameters that live in code, not in the profile."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def fit_settings(profile: Profile, regime: str) -> dict[str, object]:
    """Everything that decides a reward-model fit of ``regime`` beyond the run's own fields
    (rungs, data, seed, alpha, precision, ... are in :class:`w2s_helpers.core.results.RunConfig`).

    probe:      the frozen features' spec (dtype aside: the run's precision carries it), the
                head's solver settings and the L2 grid of cross-validation.
    top_blocks: k, the learning rates, batch, epochs, the head's probe start, max length.
    finetune:   the trainer's learning rate, batch, epochs and max length.
    """
    spec = {k: v for k, v in dataclasses.asdict(profile.features).items() if k != "dtype"}
    out: dict[str, object] = {"regime": regime, "fit_version": FIT_VERSION, "train_frac": profile.train_frac}
    if regime == "probe":
        out |= {"features": spec, "head": _defaults(heads.fit_pairwise_head), "l2": _defaults(heads.choose_l2)}
    elif regime == "top_blocks":
        from w2s_helpers.rewards import top_blocks

        cfg = dataclasses.asdict(top_blocks.TopBlocksConfig(k=profile.top_k, lr=profile.top_lr, epochs=profile.epochs,
                                                             batch_size=min(16, profile.batch_size)))
        out |= {"top_blocks": {k: v for k, v in cfg.items() if k not in ("seed", "alpha")},
                "max_length": profile.features.max_length}
    elif regime == "finetune":
        from w2s_helpers.rewards import finetune

        cfg = dataclasses.asdict(finetune.FinetuneConfig(lr=profile.lr, batch_size=profile.batch_size,
                                                         epochs=profile.epochs, max_length=profile.features.max_length))
        out |= {"finetune": {k: v for k, v in cfg.items() if k not in ("seed", "alpha", "use_cpu", "bf16", "log_every",
                                                                        "checkpointing")
                             and not (k == "grad_accum" and v == 1)}}     # (the keys saved before it existed)
    else:
        raise ValueError(f"regime must be 'probe', 'top_blocks' or 'finetune', got {regime!r}")
    return out


def fit_hash(profile: Profile, regime: str) -> str:
    """A short hash of :func:`fit_settings`: the ``fit`` field of a saved run's
    :class:`~w2s_helpers.core.results.RunConfig`. Changing any of those settings (or
    :data:`FIT_VERSION`) gives every run a new key, so a stale result is never read."""
    return content_hash(fit_settings(profile, regime), length=12)


def pools_hash(pools: dict[str, list[PreferencePair]]) -> str:
    """The ``data_hash`` of a lab's saved runs: a hash of its D_gt, D_w2s and test pools (the helpful
    pool, which only some chapters draw, is left out)."""
    return data.pairs_hash(pools["gt"] + pools["w2s"] + pools["test"])


def profile_data_hash(profile: Profile) -> str:
    """The ``data_hash`` under which chapters 1-3 saved ``profile``'s runs, without building a lab
    (reads the profile's pools only)."""
    return pools_hash(draw_pools(profile))


@dataclass
class Fitted:
    """A trained reward model of some regime.

    w:       [H] linear head (probe regime)
    scores:  pool -> margins [N] computed at fit time (adapted regimes)
    """

    rung: str
    regime: str
    w: torch.Tensor | None = None
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    pending: str = ""     # the key of a queued job whose fit is not trained yet (finetune_jobs)


class PendingFits(PendingJobs):
    """Fits are queued as jobs and not trained yet (a profile with ``finetune_jobs``)."""


def _labels(parts: Sequence[Part]) -> torch.Tensor:
    """Concatenated chosen-first labels [sum n_i] of the parts (a float means 'all equal')."""
    out = []
    for pool, idx, label in parts:
        lab = torch.as_tensor(label, dtype=torch.float32)
        lab = lab.expand(len(idx)) if lab.ndim == 0 else lab
        if len(lab) != len(idx):
            raise ValueError(f"part {pool!r}: {len(idx)} indices but {len(lab)} labels")
        out.append(lab)
    return torch.cat(out)


@dataclass
class Lab(Queueing):
    """Pools shared by every regime, and the two operations built on ``fit``."""

    profile: Profile
    pools: dict[str, list[PreferencePair]]
    regime: str = "probe"
    data_hash: str = ""
    precision: str = ""  # dtype of backbones, features and top blocks: the profile's, resolved here
    queued: set = field(default_factory=set)   # keys of jobs this lab queued and that are not trained
    waiting: int = 0                           # fits not queued: their labels need a queued fit's margins
    collecting: bool = False                   # inside ``with lab.queue()``: a queued fit's margins are NaN

    def __post_init__(self):
        if not self.precision:
            self.precision = self.profile.precision
        if not self.data_hash:
            self.data_hash = pools_hash(self.pools)

    @property
    def fit_hash(self) -> str:
        """:func:`fit_hash` of this lab's profile and regime (pass it as ``RunConfig(fit=...)``)."""
        return fit_hash(self.profile, self.regime)

    def train_idx(self, pool: str, seed: int, frac: float | None = None) -> torch.Tensor:
        """Indices of a seeded random ``frac`` of a pool (default: the profile's ``train_frac``;
        below 1 each seed trains on other data)."""
        n = len(self.pools[pool])
        frac = self.profile.train_frac if frac is None else frac
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: int(frac * n)]

    def ceiling(self, rung: str, seed: int, n: int | None = None, **kw) -> Fitted:
        """A reward model on ground truth of the seed's D_gt subset (its first ``n`` pairs if given)."""
        return self.fit(rung, [("gt", self.train_idx("gt", seed)[:n], 1.0)], seed, **kw)

    def fit(self, rung: str, parts: Sequence[Part], seed: int, alpha: float = 0.0, **kw) -> Fitted:
        raise NotImplementedError

    def margins(self, fitted: Fitted, pool: str = "test") -> torch.Tensor:
        raise NotImplementedError

    # queue() and require_trained() come from core.launch.Queueing: inside ``with lab.queue()`` a queued
    # fit's margins are NaN, so later fits that depend on them count as waiting; outside it they raise
    # PendingFits.
    pending_error = PendingFits

    def pending_message(self) -> str:
        from w2s_helpers.rewards import jobs

        path = jobs.jobs_file(self.profile.name, self.data_hash)
        return (f"{len(self.queued)} reward models are queued in {path}"
                + (f", and {self.waiting} more fits need their margins first" if self.waiting else "")
                + ". Train them (one process per GPU), then run this chapter again:\n"
                f"  accelerate launch --config_file configs/accelerate/ddp.yaml -m w2s_helpers train --jobs {path}\n"
                "(one GPU: one_gpu.yaml; a model whose copy does not fit one GPU: fsdp.yaml; "
                "`python -m w2s_helpers train --jobs FILE --status` counts what is done)")


@dataclass
class ProbeLab(Lab):
    """Features of the fixed pools for every rung, and linear heads on them.

    phi: rung -> pool -> standardised (chosen, rejected) features.
    l2:  rung -> L2 penalty chosen by 5-fold cross-validation on D_gt.
    """

    phi: dict[str, dict[str, Pair]] = field(default_factory=dict)
    l2: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, profile: Profile, helpful: bool = False, rungs: Sequence[str] | None = None,
              verbose: bool = True) -> "ProbeLab":
        """Draw the pools, extract (or read cached) features, standardise, choose L2."""
        lab = cls(profile, draw_pools(profile, helpful), regime="probe")
        for name in rungs or profile.ladder:
            t0 = time.perf_counter()
            lm = models.load(name, device=profile.device, dtype=lab.precision, install_missing=True)
            spec = dataclasses.replace(profile.features, dtype=lab.precision)
            raw = {pool: features.pair_features(lm, pairs, spec, prefix=profile.n_tour)  # ch. 0's tour: shared
                   for pool, pairs in lab.pools.items()}
            del lm
            c, r = raw["gt"]
            both = torch.cat([c, r])
            mu, sd = both.mean(0), both.std(0).clamp(min=1e-6)
            lab.phi[name] = {pool: ((c - mu) / sd, (r - mu) / sd) for pool, (c, r) in raw.items()}
            a, b, y = heads.slot_order(*lab.phi[name]["gt"], seed=0)
            lab.l2[name] = heads.choose_l2(a - b, y)
            if verbose:
                n_pairs = sum(len(p) for p in lab.pools.values())
                print(f"{name}: features of {n_pairs} pairs ready in {time.perf_counter() - t0:.1f} s, "
                      f"L2 = {lab.l2[name]:g}", flush=True)
        return lab

    def fit(self, rung: str, parts: Sequence[Part], seed: int, alpha: float = 0.0, solver: str = "auto",
            **_: object) -> Fitted:
        """A linear head on the parts' pairs, in a random slot order drawn from ``seed``.

        Chosen-first labels p become p for pairs kept in order and 1 - p for swapped ones;
        the explicit-conflict ground truth is 1 for kept and 0 for swapped pairs.
        """
        diff, label, keep = self.training_set(rung, parts, seed)
        w = heads.fit_pairwise_head(diff, label, l2=self.l2[rung], gt_label=keep if alpha else None,
                                    alpha=alpha, solver=solver)
        return Fitted(rung, "probe", w=w)

    def training_set(self, rung: str, parts: Sequence[Part], seed: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(diff [N, H], label [N], keep [N]): the parts' feature differences phi(A) - phi(B) in a
        random slot order drawn from ``seed``, their labels P(A preferred), and keep = 1 where A is
        the chosen side (the explicit-conflict ground truth)."""
        c = torch.cat([self.phi[rung][pool][0][idx] for pool, idx, _ in parts])
        r = torch.cat([self.phi[rung][pool][1][idx] for pool, idx, _ in parts])
        a, b, keep = heads.slot_order(c, r, seed)
        p = _labels(parts)
        return a - b, keep * p + (1 - keep) * (1 - p), keep

    def margins(self, fitted: Fitted, pool: str = "test") -> torch.Tensor:
        """delta [N] = r(chosen) - r(rejected) for every pair of a pool."""
        c, r = self.phi[fitted.rung][pool]
        return (c - r) @ fitted.w


@dataclass
class AdaptLab(Lab):
    """Regimes that train transformer weights: ``top_blocks`` and ``finetune``.

    ``fit(..., score=("test", "w2s"))`` trains, scores those pools and frees the model.
    top_blocks caches a rung's activations of a pool the first time a fit needs them (on disk too).
    """

    acts: dict[str, dict[str, tuple]] = field(default_factory=dict)
    backbones: dict[str, object] = field(default_factory=dict)
    verbose: bool = True
    pools_keys: dict = field(default_factory=dict)   # finetune: pools used by a job -> the hash they are written under

    @classmethod
    def build(cls, profile: Profile, regime: str, helpful: bool = False, verbose: bool = True) -> "AdaptLab":
        if regime not in ("top_blocks", "finetune"):
            raise ValueError(f"AdaptLab trains 'top_blocks' or 'finetune', not {regime!r}")
        return cls(profile, draw_pools(profile, helpful), regime=regime, verbose=verbose)

    def _activations(self, rung: str, pools: Sequence[str]) -> dict[str, tuple]:
        """(chosen, rejected) activations of ``pools`` for ``rung``, computed once each."""
        from w2s_helpers.core import decoder

        have = self.acts.setdefault(rung, {})
        missing = [s for s in dict.fromkeys(pools) if s not in have]
        if missing:
            t0 = time.perf_counter()
            if rung not in self.backbones:
                lm = models.load(rung, device=self.profile.device, dtype=self.precision, install_missing=True)
                decoder.decoder_parts(lm.model)  # clear error before any work
                self.backbones[rung] = lm
            lm = self.backbones[rung]
            k, n = self.profile.top_k, self.profile.features.max_length
            for pool in missing:
                have[pool] = tuple(decoder.activations(lm, [p.transcript(side) for p in self.pools[pool]], k, n)
                                    for side in ("chosen", "rejected"))
            if self.verbose:
                print(f"{rung}: activations below the top {k} blocks of {', '.join(missing)} ready in "
                      f"{time.perf_counter() - t0:.1f} s", flush=True)
        return have

    def _device(self) -> str:
        return models.resolve_device(self.profile.device)

    def fit(self, rung: str, parts: Sequence[Part], seed: int, alpha: float = 0.0,
            score: Sequence[str] = ("test", "w2s"), **_: object) -> Fitted:
        fit = self._fit_top_blocks if self.regime == "top_blocks" else self._fit_finetune
        out = fit(rung, parts, _labels(parts), seed, alpha, score)
        if isinstance(out, str):               # queued, not trained (finetune_jobs)
            return Fitted(rung, self.regime, pending=out)
        return Fitted(rung, self.regime, scores=out)

    def _fit_top_blocks(self, rung, parts, labels, seed, alpha, score) -> dict[str, torch.Tensor]:
        from w2s_helpers.core.decoder import Activations
        from w2s_helpers.rewards import top_blocks

        acts = self._activations(rung, [pool for pool, _, _ in parts] + list(score))
        chosen, rejected = (Activations.cat([acts[pool][side].take(idx.tolist()) for pool, idx, _ in parts])
                            for side in (0, 1))
        cfg = top_blocks.TopBlocksConfig(k=self.profile.top_k, lr=self.profile.top_lr, seed=seed, alpha=alpha,
                                         batch_size=min(16, self.profile.batch_size), epochs=self.profile.epochs)
        model = top_blocks.train(self.backbones[rung].model, chosen, rejected, labels, cfg,
                                 device=self._device(), progress=self.verbose)
        return {pool: top_blocks.margins(model, *acts[pool]) for pool in score}

    def finetune_job(self, rung, parts: Sequence[Part], labels: torch.Tensor, seed: int, alpha: float,
                     score: Sequence[str]):
        """The :class:`~w2s_helpers.rewards.jobs.Job` of one finetune fit (the pools written once)."""
        from w2s_helpers.rewards import jobs

        # only the pools this job reads, so that another chapter's lab with more pools (chapter 2 adds the
        # helpful pairs) gives the same fit the same key and reads it instead of training it again
        used = tuple(sorted({pool for pool, _, _ in parts} | set(score)))
        if used not in self.pools_keys:
            self.pools_keys[used] = jobs.write_pools({pool: self.pools[pool] for pool in used})
        sizes = [len(idx) for _, idx, _ in parts]
        split = torch.split(labels, sizes)
        config = {"lr": self.profile.lr, "batch_size": self.profile.batch_size, "epochs": self.profile.epochs,
                  "max_length": self.profile.features.max_length,
                  # the profile's precision setting, resolved by the machine that trains the job
                  "precision": self.profile.features.dtype}
        return jobs.Job(rung=jobs.rung_spec(rung), pools=self.pools_keys[used], seed=int(seed), alpha=float(alpha),
                        parts=tuple((pool, tuple(idx.tolist()), tuple(lab.tolist()))
                                    for (pool, idx, _), lab in zip(parts, split)),
                        score=tuple(score), config=config)

    def _fit_finetune(self, rung, parts, labels, seed, alpha, score) -> dict[str, torch.Tensor] | str:
        from w2s_helpers.rewards import jobs

        if self.profile.finetune_jobs and not torch.isfinite(labels).all():
            self.waiting += 1                   # labels from a queued fit's margins: queue it next round
            return "waiting"
        models.prepare(rung, install_missing=True)
        job = self.finetune_job(rung, parts, labels, seed, alpha, score)
        done = jobs.load_result(job)
        if done is not None:
            return dict(done)
        if not self.profile.finetune_jobs:
            return jobs.run(job, pools=self.pools, verbose=self.verbose, cpu=self._device() == "cpu")
        jobs.append(jobs.jobs_file(self.profile.name, self.data_hash), job)
        self.queued.add(job.key)
        return job.key

    def margins(self, fitted: Fitted, pool: str = "test") -> torch.Tensor:
        """delta [N] of a pool the fit scored. A fit still queued (``finetune_jobs``) raises
        :class:`PendingFits`, or gives NaN inside ``with lab.queue()``."""
        if fitted.pending:
            if not self.collecting:
                raise PendingFits(self.pending_message())
            return torch.full((len(self.pools[pool]),), float("nan"))
        if pool not in fitted.scores:
            raise KeyError(f"this {fitted.regime} fit of {fitted.rung} scored {sorted(fitted.scores)}, not {pool!r}; "
                           f"pass score=(..., {pool!r}) to fit")
        return fitted.scores[pool]


def build(profile: Profile, regime: str | None = None, helpful: bool = False, **kw) -> Lab:
    """The lab of ``regime`` (default: the profile's own)."""
    regime = regime or profile.regime
    if regime == "probe":
        return ProbeLab.build(profile, helpful=helpful, **kw)
    return AdaptLab.build(profile, regime, helpful=helpful, **kw)
