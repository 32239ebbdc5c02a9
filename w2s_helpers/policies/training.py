"""Training a policy: SFT on the preferred responses, then DPO or SimPO (PAPER.md section 5).

One loop serves every setting and both kinds of policy, so the settings differ only in
their loss: ``sft`` minimises the mean NLL per token of the preferred response;
``preference_optimise`` runs DPO or SimPO against reference log-probs computed once, with
the explicit-conflict term (:mod:`w2s_helpers.policies.losses`) where a per-pair mask allows.
Both train fresh LoRA adapters (or every weight of a whole model) and merge them in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from w2s_helpers.core import work
from w2s_helpers.core.batching import epoch_batches
from w2s_helpers.policies import losses
from w2s_helpers.policies.encoding import Cached, Tokens, pair_lengths
from w2s_helpers.policies.policy import (
    TopBlocksPolicy,
    WholePolicy,
    device_of,
    forward_flops,
    sequence_logps,
)

History = dict[str, list[float]]   # per-step records of a training run, by name
LORA_TARGETS = r".*blocks\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


@dataclass(frozen=True)
class POConfig:
    """SFT, then DPO or SimPO, with LoRA on the top k blocks (PAPER.md section 5 for beta/gamma).

    The paper fine-tunes whole models at lr 1e-6; LoRA on two blocks needs a far larger step.
    """

    loss: Literal["dpo", "simpo"] = "dpo"
    beta: float = 0.1             # DPO 0.1; SimPO 2.0
    gamma: float = 0.0            # SimPO target margin 1.0
    alpha: float = 0.0            # explicit-conflict weight (0: no term)
    k: int = 2
    lora_r: int = 16
    lora_alpha: int = 32
    sft_lr: float = 3e-4
    po_lr: float = 3e-4
    sft_epochs: int = 1
    po_epochs: int = 1
    batch_size: int = 8
    warmup: float = 0.1           # share of steps with a linear warm-up (paper: 10%)
    seed: int = 0

    @staticmethod
    def for_loss(loss: str, **kw) -> "POConfig":
        """The paper's beta (and gamma) for ``loss``."""
        return POConfig(loss=loss, **({"beta": 0.1} if loss == "dpo" else {"beta": 2.0, "gamma": 1.0}), **kw)

    def replace(self, **kw) -> "POConfig":
        return dataclasses.replace(self, **kw)


def with_lora(policy, config: POConfig, seed: int):
    """The model to train: ``policy`` with fresh LoRA adapters (top blocks: their linear layers;
    a whole model: every linear layer but the LM head), or itself when ``config.lora_r == 0``
    (full fine-tuning, whole models only)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    if config.lora_r == 0:
        if not isinstance(policy, WholePolicy):
            raise ValueError("full fine-tuning (lora_r = 0) is for whole models; top blocks train through LoRA")
        for p in policy.parameters():      # dropout stays off (eval mode), as in trl
            p.requires_grad_(True)
        return policy
    if isinstance(policy, WholePolicy):   # on the transformers model itself, so peft leaves the LM head out
        policy.lm = get_peft_model(policy.lm, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                         lora_dropout=0.0, target_modules="all-linear"))
        return policy
    return get_peft_model(policy, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                                             target_modules=LORA_TARGETS))


def merge_adapters(model, policy):
    """Merge LoRA adapters into the weights (full fine-tuning: nothing to merge); eval mode."""
    if isinstance(policy, WholePolicy):
        if hasattr(policy.lm, "merge_and_unload"):
            policy.lm = policy.lm.merge_and_unload()
        for p in policy.parameters():
            p.requires_grad_(False)
        return policy.eval()
    return model.merge_and_unload().eval()


def warmup_schedule(opt, steps: int, warmup: float):
    w = max(1, int(round(warmup * steps)))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / w if s < w else max(0.0, (steps - s) / max(1, steps - w)))


def sft(policy: "TopBlocksPolicy | WholePolicy", data: "Cached | Tokens", label: torch.Tensor, config: POConfig,
        progress: bool = True, history: History | None = None):
    """Supervised fine-tuning on the preferred response of each pair (the first slot where
    ``label`` [N] is True, else the second): mean NLL per response token. Returns the policy
    with the adapter merged in; ``history`` (a dict) gets "sft.loss" [steps] appended."""
    from w2s_helpers.core.progress import bar

    n = len(data)
    model = with_lora(policy, config, config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.sft_lr, weight_decay=0.0)
    steps = epoch_batches(n, config.sft_epochs, config.batch_size, config.seed)
    sched = warmup_schedule(opt, len(steps), config.warmup)
    dev = device_of(policy)
    flops = 0.0
    for batch in bar(steps, desc="SFT", disable=not progress, leave=False):
        rows = [i if bool(label[i]) else n + i for i in batch]
        h, mask, ids, starts = data.batch(rows, dev)
        tokens = sum(len(s) - int(st) for s, st in zip(ids, starts))
        loss = -policy.logps(h, mask, ids, starts).sum() / tokens
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        flops += 3 * forward_flops(policy, mask, ids, starts) if work.enabled() else 0.0
        log_history(history, "sft.loss", loss.item())
    work.record("train-sft", type(policy).__name__, flops, 0, dtype=work.dtype_of(policy))
    return merge_adapters(model, policy)


def po_loss(logps: torch.Tensor, ref: torch.Tensor, lengths: torch.Tensor, label: torch.Tensor,
            config: POConfig) -> torch.Tensor:
    """The preference loss of a batch through :mod:`w2s_helpers.policies.losses` (the notebook writes it out).

    logps, ref, lengths: [B, 2] (column 0 = ground-truth harmless); label [B] bool: True
    where the first response is preferred (the weak label, or ground truth for a ceiling). With
    ``config.alpha`` the explicit-conflict term is added.
    """
    if config.loss == "dpo":
        return losses.dpo_explicit_loss(logps[:, 0], logps[:, 1], ref[:, 0], ref[:, 1], label,
                                           config.alpha, config.beta)
    avg = logps / lengths
    return losses.simpo_explicit_loss(avg[:, 0], avg[:, 1], label, config.alpha, config.beta, config.gamma)


def implied_margin(logps: torch.Tensor, ref: torch.Tensor, lengths: torch.Tensor, label: torch.Tensor,
                   config: POConfig) -> torch.Tensor:
    """[B] the implied reward margin of each pair in the label's order (positive: the policy
    prefers the labelled side): beta * ((pi_c - ref_c) - (pi_r - ref_r)) for DPO, beta * the
    difference of per-token mean log-probs for SimPO. logps, ref, lengths: [B, 2]; label [B] bool."""
    d = (logps[:, 0] - ref[:, 0]) - (logps[:, 1] - ref[:, 1]) if config.loss == "dpo" else \
        logps[:, 0] / lengths[:, 0] - logps[:, 1] / lengths[:, 1]
    return config.beta * torch.where(label.bool(), d, -d)


def log_history(history: History | None, key: str, value: float) -> None:
    """Append one value to history[key] (a per-update curve); does nothing when history is None."""
    if history is not None:
        history.setdefault(key, []).append(float(value))


def preference_optimise(policy: "TopBlocksPolicy | WholePolicy", data: "Cached | Tokens", label: torch.Tensor,
                        config: POConfig, conflict: torch.Tensor | None = None, progress: bool = True,
                        history: History | None = None, watch: Callable[[object], float] | None = None,
                        n_watch: int = 8):
    """DPO or SimPO on pairs labelled by ``label`` [N]; the reference (DPO) is ``policy`` as
    given (the SFT model), its log-probs computed once. ``conflict`` [N] marks the pairs the
    explicit term may act on (default: all). Returns the policy with the adapter merged in.

    history: a dict that gets, per step, "po.loss", "po.margin" (the batch's mean implied reward
             margin in the label's order: beta * log-ratio difference for DPO, beta * mean log-prob
             difference for SimPO) and "po.accuracy" (the share of the batch where it is > 0).
    watch:   policy -> held-out accuracy, called before the first step and at ``n_watch`` evenly
             spaced steps ("po.watch_step", "po.watch_accuracy"); costs a forward pass each."""
    from w2s_helpers.core.progress import bar

    n = len(data)
    ref = sequence_logps(policy, data) if config.loss == "dpo" else torch.zeros(n, 2)
    lengths = pair_lengths(data.enc).float()
    conflict = torch.ones(n, dtype=torch.bool) if conflict is None else conflict.bool()
    model = with_lora(policy, config, config.seed + 1)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.po_lr, weight_decay=0.0)
    steps = epoch_batches(n, config.po_epochs, config.batch_size, config.seed + 1)
    sched = warmup_schedule(opt, len(steps), config.warmup)
    dev = device_of(policy)
    plain = config.replace(alpha=0.0)
    flops = 0.0
    at = set(torch.linspace(0, len(steps), n_watch + 1).round().long().tolist()) if watch else set()
    for step, batch in enumerate(bar(steps, desc=config.loss.upper(), disable=not progress, leave=False)):
        if step in at:
            log_history(history, "po.watch_step", step)
            log_history(history, "po.watch_accuracy", watch(policy))
        args = data.batch(batch + [n + i for i in batch], dev)
        flops += 3 * forward_flops(policy, *args[1:]) if work.enabled() else 0.0
        lp = policy.logps(*args)
        lp = torch.stack([lp[: len(batch)], lp[len(batch):]], 1)
        b = torch.tensor(batch)
        on = conflict[b]
        loss = 0.0
        for part, cfg in ((on, config), (~on, plain)):
            if part.any():
                idx = b[part]
                loss = loss + po_loss(lp[part.to(dev)], ref[idx].to(dev), lengths[idx].to(dev), label[idx].to(dev),
                                      cfg) * (int(part.sum()) / len(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if history is not None:
            m = implied_margin(lp.detach(), ref[b].to(dev), lengths[b].to(dev), label[b].to(dev), config)
            log_history(history, "po.loss", loss.item())
            log_history(history, "po.margin", m.mean().item())
            log_history(history, "po.accuracy", (m > 0).float().mean().item())
    if len(steps) in at:
        log_history(history, "po.watch_step", len(steps))
        log_history(history, "po.watch_accuracy", watch(policy))
    work.record(f"train-{config.loss}", type(policy).__name__, flops, 0, dtype=work.dtype_of(policy))
    return merge_adapters(model, policy)
