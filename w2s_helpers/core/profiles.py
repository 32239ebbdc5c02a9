"""Run profiles: one frozen dataclass per scale, chosen by one notebook parameter.

    P = profiles.get(PROFILE)     # "ci", "laptop" or "paper"

Notebooks never branch on *where* they run; they read sizes, rungs and seeds from ``P``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Literal

from w2s_helpers.core.features import FeatureSpec

Regime = Literal["probe", "top_blocks", "finetune"]


@dataclass(frozen=True)
class POSettings:
    """Chapter 4 (policies): SFT then DPO/SimPO with LoRA on the top k blocks of causal LMs."""

    weak: str                  # weak policy's rung
    strong: str                # strong policy's rung (ceiling and students)
    n_train: int               # pairs of D_gt (weak) and of D_w2s (strong); prefixes of the RM pools
    n_test: int                # test pairs (a prefix of chapters 1-3's test pool: same pairs)
    n_helpful: int             # helpful pairs added in the implicit setting
    max_prompt: int            # prompt tokens kept (the last ones)
    max_response: int          # response tokens kept (the first ones)
    k: int = 2                 # top blocks trained through LoRA (regime "top_blocks")
    batch_size: int = 8
    lr: float = 3e-4           # learning rate of both stages
    regime: str = "top_blocks" # "top_blocks": LoRA on the top k blocks over cached activations (CPU);
                               # "whole": the whole model (GPU), every weight (lora_r = 0) or LoRA
    lora_r: int = 16           # LoRA rank; 0 = full fine-tuning ("whole" only)
    dpo_epochs: int = 1        # epochs of the DPO stage (paper: 3; SimPO and SFT: 1)
    alpha: float = 0.5         # explicit conflict weight (paper: 0.5)
    seeds: tuple[int, ...] = (0,)
    n_twins: int = 1           # no-conflict students with other seeds per loss and seed: the floor
    mid: str | None = None     # chapter 5's chain intermediate (None: the strong rung itself)
    engine: str = "course"     # "whole" regime: "course" (the course's loop) or "trl" (trl's SFTTrainer and
                               # DPOTrainer with the course's losses: mixed precision, gradient accumulation, DDP)
    n_generate: int = 3        # prompts of each kind answered side by side
    max_new_tokens: int = 40


@dataclass(frozen=True)
class Profile:
    """Everything that changes between a CI smoke run, a laptop run and the paper's scale."""

    name: str
    n_train: int | None        # pairs drawn from each of D_gt and D_w2s (None = all 4000)
    n_test: int | None         # pairs drawn from D_test (None = all 4000)
    n_helpful: int | None      # helpfulness pairs for the implicit conflict (None = all)
    n_tour: int                # pairs per pool for chapter 0's first look at the ladder
    ladder: tuple[str, ...]    # rungs from weakest to strongest; every weak < strong pair is run
    regime: Regime             # probe: head on frozen features; top_blocks; finetune: whole model
    seeds: tuple[int, ...]     # one run per seed; intervals are taken over them
    features: FeatureSpec      # how frozen features are extracted (probe regime, ch. 0); its dtype
                               # ("auto": see precision.py) is also the backbones' and top blocks' dtype
    device: str                # "auto" picks cuda > mps > cpu
    num_threads: int | None    # torch CPU threads (None = torch's default, all cores). On the 2-core
                               # dev machine 2 threads ran features 1.5-1.8x faster than 1 (bench/);
                               # set 1 if another busy process shares the cores.
    lr: float                  # finetune regime: learning rate (paper: 1e-5 reward models)
    batch_size: int            # finetune/top_blocks training batch (paper: 32)
    epochs: int                # training epochs (paper: 1 for reward models)
    top_k: int = 2             # top_blocks regime: transformer blocks trained on cached activations
    top_lr: float = 1e-4       # top_blocks regime: learning rate of the blocks (the head's is 10x)
    train_frac: float = 0.8    # share of a pool each seed trains on (a seeded subset, so seeds see other
                               # data); 1.0 = the whole pool, the paper's design (seeds then differ only by
                               # initialisation and order)
    weak_n: int | None = 100   # GT pairs the weak supervisor of chapters 2-3 trains on; None = its whole
                               # training share of D_gt (the paper's design: the weak ceiling on all of D_gt)
    regime_study: tuple[tuple[str, str], ...] = ()  # chapter 1, section 3: (rung, adapted regime)
                                                    # ceilings compared with the probe's
    task_rungs: tuple[str, ...] = ()  # chapter 3b: rungs measured on the arithmetic task beyond the ladder
                                      # (frozen features and zero-shot only; the deception runs use the ladder)
    po: POSettings | None = None  # chapter 4's policies
    finetune_jobs: bool = False   # finetune regime: queue missing fits as jobs for `accelerate launch`
                                  # (w2s_helpers/rewards/jobs.py) instead of training them in the notebook
    description: str = ""

    @property
    def precision(self) -> str:
        """The dtype this profile computes features, activations and top blocks in, on this machine
        (``features.dtype`` with ``"auto"`` resolved: :func:`w2s_helpers.core.precision.resolve`)."""
        from w2s_helpers.core.models import resolve_device
        from w2s_helpers.core.precision import resolve

        return resolve(self.features.dtype, resolve_device(self.device))

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (profiles themselves are immutable)."""
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "ci": Profile(
        name="ci", n_train=200, n_test=200, n_helpful=100, n_tour=100,
        ladder=("minilm-l6", "smollm2-135m"),
        regime="probe", seeds=(0, 1),
        features=FeatureSpec(pooling="last", max_length=128, dtype="auto", batch_size=32, batch_tokens=2048),
        device="cpu", num_threads=None, lr=5e-5, batch_size=16, epochs=1, weak_n=30,
        regime_study=(("minilm-l6", "finetune"), ("smollm2-135m", "top_blocks")),
        po=POSettings(weak="smollm2-135m", strong="smollm2-135m", n_train=48, n_test=64, n_helpful=24,
                      max_prompt=48, max_response=24, k=1, n_generate=1, max_new_tokens=16, seeds=(0, 1), n_twins=2),
        description="smoke test: every code path, small n, two offline rungs, minutes on 2 CPU cores",
    ),
    "laptop": Profile(
        name="laptop", n_train=1000, n_test=1000, n_helpful=None, n_tour=500,
        ladder=("minilm-l6", "smollm2-135m", "qwen2.5-0.5b"),
        regime="probe", seeds=(0, 1, 2),
        features=FeatureSpec(pooling="last", max_length=256, dtype="auto", batch_size=32, batch_tokens=2048),
        device="cpu", num_threads=None, lr=5e-5, batch_size=16, epochs=1,
        regime_study=(("minilm-l6", "finetune"), ("smollm2-135m", "top_blocks")), task_rungs=("qwen2.5-1.5b",),
        po=POSettings(weak="smollm2-135m", strong="qwen2.5-0.5b", n_train=192, n_test=400, n_helpful=192,
                      max_prompt=48, max_response=32, lr=1e-3, seeds=(0, 1, 2), n_twins=2),
        description="what a learner runs on a 2-core CPU: three offline rungs, 1000 pairs per pool",
    ),
    "paper": Profile(
        name="paper", n_train=None, n_test=None, n_helpful=None, n_tour=2000,
        ladder=("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"),
        regime="finetune", seeds=(0, 1, 2),
        features=FeatureSpec(pooling="last", max_length=512, dtype="auto", batch_size=32, batch_tokens=16384),
        device="auto", num_threads=None, lr=1e-5, batch_size=32, epochs=1, train_frac=1.0, weak_n=None,
        finetune_jobs=True,
        po=POSettings(weak="gpt2", strong="gpt2-large", n_train=4000, n_test=4000, n_helpful=4000,
                      max_prompt=256, max_response=256, batch_size=32, lr=1e-6, regime="whole", lora_r=0,
                      dpo_epochs=3, n_generate=5, max_new_tokens=64, seeds=(0, 1, 2), n_twins=2, mid="gpt2-medium",
                      engine="trl"),
        description="the paper's scale: GPT-2 ladder from the hub, 4000 pairs per pool, GPU(s), max length 512",
    ),
}

OPT_LADDER = ("opt-125m", "opt-350m", "opt-1.3b", "opt-2.7b", "opt-6.7b")  # paper's second family
PROFILES["paper-opt"] = PROFILES["paper"].replace(
    name="paper-opt", ladder=OPT_LADDER,
    po=dataclasses.replace(PROFILES["paper"].po, weak="opt-125m", strong="opt-6.7b", mid="opt-1.3b"),
    description="the paper's scale on its second family: the OPT ladder from the hub (125M to 6.7B; the 6.7B "
                "policy needs FSDP over several GPUs or LoRA, see core.memory; neither is wired into the course's "
                "policy training yet)")


SIZES_ENV = "W2S_SIZES"   # e.g. "n_train=150,n_test=120": the documented way to fit a profile to a smaller data folder
SIZE_FIELDS = ("n_train", "n_test", "n_helpful")


def get(name: str) -> Profile:
    """Profile by name, with a clear error for a typo; resized by ``$W2S_SIZES`` when it is set
    (:func:`resize`), so every chapter and every chapter it starts draws the same pools."""
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    spec = os.environ.get(SIZES_ENV, "").strip()
    return resize(PROFILES[name], **parse_sizes(spec)) if spec else PROFILES[name]


def parse_sizes(spec: str) -> dict[str, int]:
    """"n_train=150,n_test=120" -> {"n_train": 150, "n_test": 120}, with a clear error for anything else."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in SIZE_FIELDS or not value.strip().isdigit() or int(value) <= 0:
            raise ValueError(f"{SIZES_ENV}={spec!r}: expected comma-separated {'/'.join(SIZE_FIELDS)}=<positive int>, "
                             f"got {part!r}")
        out[key.strip()] = int(value)
    return out


def resize(profile: Profile, **sizes: int) -> Profile:
    """A copy drawing fewer (or more) pairs: ``n_train`` (each of D_gt and D_w2s), ``n_test``,
    ``n_helpful``. Chapter 4's policy pools, prefixes of these, are cut to fit; chapter 2's weak
    supervisor never trains on more D_gt pairs than a seed's share holds."""
    unknown = set(sizes) - set(SIZE_FIELDS)
    if unknown:
        raise ValueError(f"resize: unknown sizes {sorted(unknown)}; known: {SIZE_FIELDS}")
    p = profile.replace(**sizes)
    if p.po is not None:
        cap = lambda n, limit: n if limit is None else min(n, limit)
        p = p.replace(po=dataclasses.replace(p.po, n_train=cap(p.po.n_train, p.n_train),
                                             n_test=cap(p.po.n_test, p.n_test),
                                             n_helpful=cap(p.po.n_helpful, p.n_helpful)))
    if p.weak_n is not None and p.n_train is not None:
        p = p.replace(weak_n=min(p.weak_n, int(p.train_frac * p.n_train)))
    return p


def apply(profile: Profile) -> None:
    """Apply a profile's process-wide settings (torch threads)."""
    import torch

    if profile.num_threads:
        torch.set_num_threads(profile.num_threads)
