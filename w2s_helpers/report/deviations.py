"""Where this run differs from the paper's set-up, generated from the profile and the data it
actually used, so the table is never out of date. The paper's side is PAPER.md's (sections 2-6);
where PAPER.md is silent the table says "not stated" rather than guess.
"""

from __future__ import annotations

from typing import Mapping

from w2s_helpers.core import models
from w2s_helpers.core.profiles import Profile


def _rung(name: str) -> str:
    try:
        r = models.get_rung(name)
    except models.UnknownRungError:
        return name
    kind = "encoder" if not r.causal else "decoder"
    return f"{name} ({r.params_m:g}M, {kind}{'; ' + r.note if r.note else ''})"


def deviations(profile: Profile, pools: Mapping[str, int], task: str, data: str, precision: str,
               regime: str | None = None):
    """A table (aspect, the paper, this run) for ``profile`` run on ``task`` with pool sizes ``pools``
    ({"gt": n, "w2s": n, "test": n, "helpful": n}) read from ``data`` (a description of the folder) in
    ``precision``, reward models in ``regime`` (default: the profile's)."""
    import pandas as pd

    po = profile.po
    training = {"probe": f"linear head on frozen features ({profile.features.pooling} pooling, max length "
                       f"{profile.features.max_length}); full-batch Adam or L-BFGS",
              "top_blocks": f"top {profile.top_k} blocks and a head on cached activations, lr {profile.top_lr:g}",
              "finetune": f"whole model, lr {profile.lr:g}, batch {profile.batch_size}, {profile.epochs} epoch(s)"}
    rows = [
        ("target objective", "harmlessness (CAI-harmless files in the scripted runs; HH-RLHF single-turn splits as the "
                             "release's alternative)",
         "HH-RLHF single-turn splits (the release's alternative)" if task == "hh"
         else "the course's arithmetic task: correct products (a generated task, not the paper's)"),
        ("conflicting objective", "helpfulness: 4000 ground-truth helpful pairs",
         f"helpfulness: {pools.get('helpful', 0)} HH helpful pairs" if task == "hh"
         else f"agreeing with the user's stated belief: {pools.get('helpful', 0)} agreement pairs"),
        ("pairs per pool (D_gt, D_w2s, D_test)", "4000, 4000, 4000",
         f"{pools['gt']}, {pools['w2s']}, {pools['test']}"),
        ("data folder", "the authors' files", data),
        ("reward-model ladder", "GPT-2 124M, 355M, 774M, 1.5B; OPT 125M-6.7B",
         "; ".join(_rung(r) for r in profile.ladder)),
        ("reward-model training", "whole model, lr 1e-5, batch 32, 1 epoch, Adam, cosine decay, max length 512",
         training[regime or profile.regime]),
        ("weak ceiling trained on", "all of D_gt",
         "its whole training share of D_gt" if profile.weak_n is None else f"{profile.weak_n} D_gt pairs"),
        ("data per seed", "the whole pool, seed 0",
         f"{profile.train_frac:.0%} of each pool, a seeded subset per seed; seeds {list(profile.seeds)}"),
        ("precision", "not stated in PAPER.md", precision),
    ]
    if po is not None:
        rows += [
            ("policies (weak → strong)", "GPT-2, OPT and Mistral-7B-v0.1 (FSDP on 4×A100-40G)",
             f"{_rung(po.weak)} → {_rung(po.strong)}"),
            ("policy training", "SFT 1 epoch, then DPO (β 0.1, 3 epochs) or SimPO (β 2, γ 1, 1 epoch); lr 1e-6, "
                                "batch 32; whole model",
             ("LoRA (rank " + str(po.lora_r) + f") on the top {po.k} blocks over cached activations"
              if po.regime == "top_blocks" else "whole model" + (f", LoRA rank {po.lora_r}" if po.lora_r else ""))
             + f"; lr {po.lr:g}, batch {po.batch_size}, DPO {po.dpo_epochs} epoch(s); {po.n_train} pairs per pool, "
               f"{po.n_test} test pairs, prompts ≤ {po.max_prompt} and responses ≤ {po.max_response} tokens"),
        ]
    rows += [("mitigations", "bootstrapping scripted for SimPO (GPT-2 large → OPT-6.7B → Mistral-7B); filtering at "
                             "0.75 for SimPO and DPO, reading the ground truth",
              "reward models only (chapter 5, probe regime): the chain through an intermediate rung (the ladder's "
              "middle one; the strong rung itself on a two-rung ladder), the oracle and the confidence-only filter, "
              "two further ideas")]
    frame = pd.DataFrame(rows, columns=["aspect", "the paper", "this run"])
    return frame.set_index("aspect")
