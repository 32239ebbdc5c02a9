"""Policies for chapter 4: causal LMs trained by SFT, then DPO or SimPO (PAPER.md section 5).

A policy's preference between two responses is a comparison of log-probabilities::

    logp(y | x) = sum_t log pi(y_t | x, y_<t)        summed over the response tokens
    DPO correctness:   logp(y_c | x)       >= logp(y_r | x)          (policy only, no reference)
    SimPO correctness: logp(y_c | x) / |y_c| >= logp(y_r | x) / |y_r|

Training on a 2-core CPU is made feasible the way chapter 1's ``top_blocks`` regime is: the
bottom L - k blocks stay frozen, their output for every sequence is computed once and cached,
and LoRA adapters (peft) are trained on the top k blocks only. The frozen LM head turns the top
blocks' states into log-probs of the response tokens. SFT and the preference stage both train
the top blocks, so the cache serves every model trained from one base. ``check_policy_forward``
checks the partial forward against the full model's log-probs. On GPUs (the ``paper`` profile)
:class:`WholePolicy` trains whole models, every weight or LoRA, through the same loop.

Tokenisation follows trl's DPOTrainer: the prompt is ``"\\n\\nHuman: ...\\n\\nAssistant:"``, the
completion is what ``tokenize(prompt + response)`` adds after the common prefix, plus EOS.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import po_losses, work
from .data import PreferencePair
from .store import content_hash
from .top_blocks import Activations, TopBlocks, activations_of_ids, cached_activations, epoch_batches

POLICY_VERSION = "1"
LORA_TARGETS = r".*blocks\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


def prompt_text(pair: PreferencePair) -> str:
    """The prompt as the policy sees it (HH format, up to the Assistant marker)."""
    return f"\n\nHuman: {pair.prompt}\n\nAssistant:"


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Encoded:
    """Token ids of N pairs as 2N sequences: rows 0..N-1 prompt + chosen, rows N..2N-1 prompt +
    rejected (the data's own order: chosen = ground truth).

    ids:    2N lists of token ids (prompt, then response)
    starts: [2N] index of each sequence's first response token (>= 1)
    """

    ids: list[list[int]]
    starts: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids) // 2

    @property
    def lengths(self) -> torch.Tensor:
        """[2N] response tokens per sequence."""
        return torch.tensor([len(s) for s in self.ids]) - self.starts

    def take(self, idx: Sequence[int]) -> "Encoded":
        """Pairs ``idx`` (both sequences of each), in that order."""
        n = len(self)
        rows = list(idx) + [n + i for i in idx]
        return Encoded([self.ids[r] for r in rows], self.starts[rows])

    @staticmethod
    def cat(parts: Sequence["Encoded"]) -> "Encoded":
        firsts = [e.ids[: len(e)] for e in parts]
        seconds = [e.ids[len(e):] for e in parts]
        starts = [torch.cat([e.starts[: len(e)] for e in parts]), torch.cat([e.starts[len(e):] for e in parts])]
        return Encoded(sum(firsts, []) + sum(seconds, []), torch.cat(starts))


def encode_pairs(tokenizer, pairs: Sequence[PreferencePair], max_prompt: int | None = None,
                 max_response: int | None = None) -> Encoded:
    """Tokenise pairs as trl's DPOTrainer does; keep the last ``max_prompt`` prompt tokens and the
    first ``max_response`` response tokens (a cut response loses its EOS)."""
    if not pairs:
        raise ValueError("no pairs to encode")
    eos = tokenizer.eos_token_id
    seqs: list[list[int]] = []
    starts: list[int] = []
    for side in ("chosen", "rejected"):
        for p in pairs:
            prompt = tokenizer(prompt_text(p))["input_ids"]
            full = tokenizer(prompt_text(p) + " " + getattr(p, side))["input_ids"]
            cut = _common_prefix(prompt, full)
            head, resp = prompt[:cut], full[cut:] + [eos]
            if max_prompt is not None:
                head = head[-max_prompt:]
            if max_response is not None:
                resp = resp[:max_response]
            if not head or not resp:
                raise ValueError(f"pair {p.source or p.prompt[:40]!r} has an empty prompt or response after tokenising")
            seqs.append(head + resp)
            starts.append(len(head))
    return Encoded(seqs, torch.tensor(starts))


def _response_targets(ids: Sequence[list[int]], starts: torch.Tensor):
    """Flat index of every response token: (row [M], position predicting it [M], target id [M])."""
    rows, pos, tgt = [], [], []
    for r, (s, st) in enumerate(zip(ids, starts.tolist())):
        n = len(s) - st
        rows += [r] * n
        pos += range(st - 1, len(s) - 1)
        tgt += s[st:]
    return torch.tensor(rows), torch.tensor(pos), torch.tensor(tgt)


def token_logps(states: torch.Tensor, head_weight: torch.Tensor, ids: Sequence[list[int]],
                starts: torch.Tensor) -> torch.Tensor:
    """Summed response log-probs [B] from final states [B, T, H] and the LM head [V, H].

    Only response positions go through the head (the vocabulary is the costly part), and
    ``cross_entropy`` fuses the log-softmax with the gather.
    """
    return _summed_logps(lambda rows, pos: states[rows, pos] @ head_weight.T, ids, starts, states.device)


def _summed_logps(logits_at, ids: Sequence[list[int]], starts: torch.Tensor, dev) -> torch.Tensor:
    """[B] summed log-probs of the response tokens; ``logits_at(rows, pos)`` gives the logits
    [M, V] that predict them (cross_entropy fuses the log-softmax with the gather)."""
    rows, pos, tgt = (t.to(dev) for t in _response_targets(ids, starts))
    nll = F.cross_entropy(logits_at(rows, pos).float(), tgt, reduction="none")             # [M]
    return -torch.zeros(len(ids), device=dev).index_add(0, rows, nll)


class TopBlocksPolicy(TopBlocks):
    """The top k blocks of a causal LM (trainable through LoRA) and its frozen LM head.

    logps(h [B, T, H] cached inputs of block L-k, mask [B, T], ids, starts) -> [B] summed
    log-probs of each sequence's response tokens.
    """

    def __init__(self, causal_lm: nn.Module, k: int):
        super().__init__(causal_lm.model, k)
        self.register_buffer("head_weight", causal_lm.get_output_embeddings().weight.detach(), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)

    def logps(self, h: torch.Tensor, mask: torch.Tensor, ids: Sequence[list[int]], starts: torch.Tensor) -> torch.Tensor:
        return token_logps(self.hidden(h, mask), self.head_weight, ids, starts)


class WholePolicy(nn.Module):
    """A whole causal LM as a policy (the ``paper`` profile, GPUs): every weight is trained
    (``lora_r = 0``) or LoRA goes on every linear layer. Works for any causal LM (GPT-2, OPT,
    Llama, ...): log-probs come from the model's own logits.

    logps(x [B, T] right-padded ids, mask [B, T], ids, starts) -> [B] summed response log-probs.
    """

    def __init__(self, causal_lm: nn.Module):
        super().__init__()
        import copy

        self.lm = copy.deepcopy(causal_lm)

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    def logps(self, x: torch.Tensor, mask: torch.Tensor, ids: Sequence[list[int]], starts: torch.Tensor) -> torch.Tensor:
        return lm_logps(self.lm, x, mask, ids, starts)


def lm_logps(lm: nn.Module, x: torch.Tensor, mask: torch.Tensor, ids: Sequence[list[int]],
             starts: torch.Tensor) -> torch.Tensor:
    """Summed response log-probs [B] of any causal LM from its logits (x, mask: [B, T], right padding)."""
    logits = lm(input_ids=x, attention_mask=mask, use_cache=False).logits              # [B, T, V]
    return _summed_logps(lambda rows, pos: logits[rows, pos], ids, starts, logits.device)


@dataclass(frozen=True)
class Tokens:
    """Encoded pairs as token ids only (for :class:`WholePolicy`; nothing is cached)."""

    enc: Encoded
    pad_id: int

    def __len__(self) -> int:
        return len(self.enc)

    @property
    def lengths(self) -> torch.Tensor:
        return torch.tensor([len(s) for s in self.enc.ids])

    def batch(self, rows: Sequence[int], device: str = "cpu"):
        """(x [B, T], mask [B, T], ids, starts) of sequences ``rows`` (0..2N-1)."""
        from .top_blocks import _pad

        ids = [self.enc.ids[r] for r in rows]
        x, mask = _pad(ids, self.pad_id)
        return x.to(device), mask.to(device), ids, self.enc.starts[list(rows)]

    def take(self, idx: Sequence[int]) -> "Tokens":
        return Tokens(self.enc.take(idx), self.pad_id)

    @staticmethod
    def cat(parts: Sequence["Tokens"]) -> "Tokens":
        return Tokens(Encoded.cat([p.enc for p in parts]), parts[0].pad_id)


def _device(policy: nn.Module) -> torch.device:
    return policy.device if isinstance(policy, WholePolicy) else policy.head_weight.device


@dataclass(frozen=True)
class Cached:
    """Encoded pairs with the cached inputs of block L-k of all 2N sequences."""

    enc: Encoded
    acts: Activations

    def __len__(self) -> int:
        return len(self.enc)

    @property
    def lengths(self) -> torch.Tensor:
        """[2N] tokens per sequence."""
        return self.acts.lengths

    def batch(self, rows: Sequence[int], device: str = "cpu"):
        """(h [B, T, H], mask [B, T], ids, starts) of sequences ``rows`` (0..2N-1)."""
        h, mask = self.acts.batch(rows)
        return h.to(device), mask.to(device), [self.enc.ids[r] for r in rows], self.enc.starts[list(rows)]

    def take(self, idx: Sequence[int]) -> "Cached":
        n = len(self)
        return Cached(self.enc.take(idx), self.acts.take(list(idx) + [n + i for i in idx]))

    @staticmethod
    def cat(parts: Sequence["Cached"]) -> "Cached":
        n = [len(p) for p in parts]
        firsts = [p.acts.take(range(m)) for p, m in zip(parts, n)]
        seconds = [p.acts.take(range(m, 2 * m)) for p, m in zip(parts, n)]
        return Cached(Encoded.cat([p.enc for p in parts]), Activations.cat(firsts + seconds))


def cached(loaded, enc: Encoded, k: int, batch_size: int = 16, progress: bool = True) -> Cached:
    """:func:`top_blocks.activations_of_ids` for all 2N sequences, through the disk cache
    (:func:`top_blocks.cached_activations`, keyed by model fingerprint, token ids and k)."""
    key = content_hash(loaded.fingerprint, enc.ids, k, POLICY_VERSION, length=24)
    acts = cached_activations(
        f"policy-{key}.safetensors", len(enc.ids),
        lambda: activations_of_ids(loaded.model, enc.ids, k, loaded.tokenizer.pad_token_id, batch_size, progress),
        lengths=[len(s) for s in enc.ids])
    return Cached(enc, acts)


def _length_batches(lengths: torch.Tensor, batch_size: int) -> list[list[int]]:
    order = torch.argsort(lengths, descending=True, stable=True).tolist()
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def sequence_logps(policy: "TopBlocksPolicy | WholePolicy", data: "Cached | Tokens", batch_size: int = 16) -> torch.Tensor:
    """Summed response log-probs [N, 2] (column 0: chosen, 1: rejected), batched by length."""
    n = len(data)
    out = torch.empty(2 * n)
    dev = _device(policy)
    was_training = policy.training
    policy.eval()
    flops = 0.0
    for rows in _length_batches(data.lengths, batch_size):
        args = data.batch(rows, dev)
        out[rows] = policy.logps(*args).float().cpu()
        flops += _forward_flops(policy, *args[1:]) if work.enabled() else 0.0
    work.record("logps", type(policy).__name__, flops, 0, dtype=work.dtype_of(policy))
    policy.train(was_training)
    return torch.stack([out[:n], out[n:]], 1)


def preference(logps: torch.Tensor, lengths: torch.Tensor, loss: Literal["dpo", "simpo"]) -> torch.Tensor:
    """delta [N]: how much the policy prefers the first response of each pair.

    logps [N, 2] summed log-probs; lengths [N, 2] response tokens. DPO compares sums, SimPO
    per-token means (each scenario's correctness rule). Correct on a pair: delta >= 0.
    """
    if loss == "dpo":
        return logps[:, 0] - logps[:, 1]
    if loss == "simpo":
        return logps[:, 0] / lengths[:, 0] - logps[:, 1] / lengths[:, 1]
    raise ValueError(f"loss must be 'dpo' or 'simpo', got {loss!r}")


def pair_lengths(enc: Encoded) -> torch.Tensor:
    """[N, 2] response tokens of (chosen, rejected)."""
    n, lens = len(enc), enc.lengths
    return torch.stack([lens[:n], lens[n:]], 1)


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


def _with_lora(policy, config: POConfig, seed: int):
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


def _finish(model, policy):
    """Merge LoRA adapters into the weights (full fine-tuning: nothing to merge); eval mode."""
    if isinstance(policy, WholePolicy):
        if hasattr(policy.lm, "merge_and_unload"):
            policy.lm = policy.lm.merge_and_unload()
        for p in policy.parameters():
            p.requires_grad_(False)
        return policy.eval()
    return model.merge_and_unload().eval()


def _forward_flops(policy: "TopBlocksPolicy | WholePolicy", mask: torch.Tensor, ids: Sequence[list[int]],
                   starts: torch.Tensor) -> float:
    """Matmul FLOPs of one ``policy.logps`` call (for :mod:`w2s_helpers.work`): the blocks over
    every token; a top-block policy's LM head over the response tokens only."""
    tokens = int(mask.sum())
    if isinstance(policy, TopBlocksPolicy):
        response = sum(len(s) - int(st) for s, st in zip(ids, starts))
        return 2.0 * work.dense_params(policy) * tokens + 2.0 * policy.head_weight.numel() * response
    return 2.0 * work.dense_params(policy) * tokens


def _schedule(opt, steps: int, warmup: float):
    w = max(1, int(round(warmup * steps)))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / w if s < w else max(0.0, (steps - s) / max(1, steps - w)))


def sft(policy: "TopBlocksPolicy | WholePolicy", data: "Cached | Tokens", first: torch.Tensor, config: POConfig,
        progress: bool = True):
    """Supervised fine-tuning on the preferred response of each pair (the first slot where
    ``first`` [N] is True, else the second): mean NLL per response token. Returns the policy
    with the adapter merged in."""
    from .progress import bar

    n = len(data)
    model = _with_lora(policy, config, config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.sft_lr, weight_decay=0.0)
    steps = epoch_batches(n, config.sft_epochs, config.batch_size, config.seed)
    sched = _schedule(opt, len(steps), config.warmup)
    dev = _device(policy)
    flops = 0.0
    for batch in bar(steps, desc="SFT", disable=not progress, leave=False):
        rows = [i if bool(first[i]) else n + i for i in batch]
        h, mask, ids, starts = data.batch(rows, dev)
        tokens = sum(len(s) - int(st) for s, st in zip(ids, starts))
        loss = -policy.logps(h, mask, ids, starts).sum() / tokens
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        flops += 3 * _forward_flops(policy, mask, ids, starts) if work.enabled() else 0.0
    work.record("train-sft", type(policy).__name__, flops, 0, dtype=work.dtype_of(policy))
    return _finish(model, policy)


def po_loss(logps: torch.Tensor, ref: torch.Tensor, lengths: torch.Tensor, first: torch.Tensor,
            config: POConfig) -> torch.Tensor:
    """The preference loss of a batch through :mod:`po_losses` (the notebook writes it out).

    logps, ref, lengths: [B, 2] (column 0 = ground-truth harmless); first [B]: the label says
    the first response is preferred. With ``config.alpha`` the explicit-conflict term is added.
    """
    if config.loss == "dpo":
        return po_losses.dpo_explicit_loss(logps[:, 0], logps[:, 1], ref[:, 0], ref[:, 1], first,
                                           config.alpha, config.beta)
    avg = logps / lengths
    return po_losses.simpo_explicit_loss(avg[:, 0], avg[:, 1], first, config.alpha, config.beta, config.gamma)


def preference_optimise(policy: "TopBlocksPolicy | WholePolicy", data: "Cached | Tokens", first: torch.Tensor,
                        config: POConfig, conflict: torch.Tensor | None = None, progress: bool = True):
    """DPO or SimPO on pairs labelled by ``first`` [N]; the reference (DPO) is ``policy`` as
    given (the SFT model), its log-probs computed once. ``conflict`` [N] marks the pairs the
    explicit term may act on (default: all). Returns the policy with the adapter merged in."""
    from .progress import bar

    n = len(data)
    ref = sequence_logps(policy, data) if config.loss == "dpo" else torch.zeros(n, 2)
    lengths = pair_lengths(data.enc).float()
    conflict = torch.ones(n, dtype=torch.bool) if conflict is None else conflict.bool()
    model = _with_lora(policy, config, config.seed + 1)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.po_lr, weight_decay=0.0)
    steps = epoch_batches(n, config.po_epochs, config.batch_size, config.seed + 1)
    sched = _schedule(opt, len(steps), config.warmup)
    dev = _device(policy)
    plain = config.replace(alpha=0.0)
    flops = 0.0
    for batch in bar(steps, desc=config.loss.upper(), disable=not progress, leave=False):
        args = data.batch(batch + [n + i for i in batch], dev)
        flops += 3 * _forward_flops(policy, *args[1:]) if work.enabled() else 0.0
        lp = policy.logps(*args)
        lp = torch.stack([lp[: len(batch)], lp[len(batch):]], 1)
        b = torch.tensor(batch)
        on = conflict[b]
        loss = 0.0
        for part, cfg in ((on, config), (~on, plain)):
            if part.any():
                idx = b[part]
                loss = loss + po_loss(lp[part.to(dev)], ref[idx].to(dev), lengths[idx].to(dev), first[idx].to(dev),
                                      cfg) * (int(part.sum()) / len(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    work.record(f"train-{config.loss}", type(policy).__name__, flops, 0, dtype=work.dtype_of(policy))
    return _finish(model, policy)


# ---------------------------------------------------------------------------------------------
# The whole model: checks against the partial forward and against trl, and generation.

@torch.no_grad()
def full_logps(model: nn.Module, enc: Encoded, batch_size: int = 8) -> torch.Tensor:
    """Summed response log-probs [N, 2] from a whole causal LM (right padding, by length)."""
    dev = next(model.parameters()).device
    data = Tokens(enc, 0)
    n, out = len(enc), torch.empty(2 * len(enc))
    for rows in _length_batches(data.lengths, batch_size):
        out[rows] = lm_logps(model, *data.batch(rows, dev)).float().cpu()
    return torch.stack([out[:n], out[n:]], 1)


def check_policy_forward(loaded, enc: Encoded, k: int) -> float:
    """Largest |difference| of summed response log-probs between the whole model and the
    partial forward (cached inputs of block L-k through :class:`TopBlocksPolicy`), relative
    to the largest |log-prob|. ~1e-6 in float32."""
    data = Cached(enc, activations_of_ids(loaded.model, enc.ids, k, loaded.tokenizer.pad_token_id, progress=False))
    partial = sequence_logps(TopBlocksPolicy(loaded.model, k).eval(), data)
    full = full_logps(loaded.model, enc)
    return float((partial - full).abs().max() / full.abs().max())


def trl_loss(model: nn.Module, tokenizer, pairs: Sequence[PreferencePair], loss: Literal["dpo", "simpo"],
             ref_model: nn.Module | None = None, beta: float | None = None, gamma: float = 1.0) -> float:
    """trl's own loss on one batch holding all ``pairs`` (chosen = the data's chosen side).

    DPO: ``trl.DPOTrainer`` (sigmoid loss) with ``ref_model`` as the reference. SimPO:
    ``trl.experimental.cpo.CPOTrainer`` with ``loss_type="simpo"`` and ``cpo_alpha=0``.
    No training happens: the trainer only builds its batch and calls ``compute_loss``.
    """
    import copy
    import tempfile
    import warnings

    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()
    rows = [{"prompt": prompt_text(p), "chosen": " " + p.chosen, "rejected": " " + p.rejected} for p in pairs]
    common = dict(per_device_train_batch_size=len(pairs), bf16=False, report_to="none", max_length=None,
                  use_cpu=next(model.parameters()).device.type == "cpu", remove_unused_columns=False)
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if loss == "dpo":
            from trl import DPOConfig, DPOTrainer

            if ref_model is None:
                raise ValueError("DPO needs a reference model (the SFT copy)")
            args = DPOConfig(output_dir=out, beta=0.1 if beta is None else beta, loss_type=["sigmoid"],
                             gradient_checkpointing=False, **common)
            trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=Dataset.from_list(rows),
                                 processing_class=tokenizer)
        elif loss == "simpo":
            from trl.experimental.cpo import CPOConfig, CPOTrainer

            # CPOTrainer prepends BOS to the prompt, DPOTrainer does not; the course encodes as
            # DPOTrainer does, so CPOTrainer gets a tokenizer copy without BOS: same tokens.
            tokenizer = copy.deepcopy(tokenizer)
            tokenizer.bos_token = None
            args = CPOConfig(output_dir=out, beta=2.0 if beta is None else beta, loss_type="simpo", cpo_alpha=0.0,
                             simpo_gamma=gamma, max_completion_length=None, **common)
            trainer = CPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                 processing_class=tokenizer)
        else:
            raise ValueError(f"loss must be 'dpo' or 'simpo', got {loss!r}")
        batch = next(iter(trainer.get_train_dataloader()))
        model.eval()
        with torch.no_grad():
            value = trainer.compute_loss(trainer.model, batch)
    return float(value)


def trl_sft_loss(model: nn.Module, tokenizer, pairs: Sequence[PreferencePair]) -> float:
    """trl's ``SFTTrainer`` loss (completion-only, mean over response tokens) on one batch of the
    pairs' chosen responses; the course's SFT loss on the same batch is
    ``-full_logps(model, enc)[:, 0].sum() / pair_lengths(enc)[:, 0].sum()``."""
    import tempfile
    import warnings

    import datasets
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    datasets.disable_progress_bars()
    rows = [{"prompt": prompt_text(p), "completion": " " + p.chosen} for p in pairs]
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = SFTConfig(output_dir=out, per_device_train_batch_size=len(pairs), bf16=False, report_to="none",
                         max_length=None, use_cpu=next(model.parameters()).device.type == "cpu",
                         gradient_checkpointing=False, completion_only_loss=True)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
        batch = next(iter(trainer.get_train_dataloader()))
        model.eval()
        with torch.no_grad():
            value = trainer.compute_loss(trainer.model, batch)
    return float(value)


def to_causal_lm(policy: TopBlocksPolicy, causal_lm: nn.Module) -> nn.Module:
    """A copy of ``causal_lm`` whose top k blocks and final norm are the policy's (to generate)."""
    import copy

    model = copy.deepcopy(causal_lm)
    layers = model.model.layers
    k = len(policy.blocks)
    for i, block in enumerate(policy.blocks):
        layers[len(layers) - k + i].load_state_dict(block.state_dict())
    model.model.norm.load_state_dict(policy.norm.state_dict())
    return model.eval()


@torch.no_grad()
def generate(model: nn.Module, tokenizer, prompts: Sequence[str], max_new_tokens: int = 40) -> list[str]:
    """Greedy answers to HH prompts (one at a time: no padding questions), decoded."""
    out = []
    dev = next(model.parameters()).device
    for p in prompts:
        ids = tokenizer(prompt_text(PreferencePair(p, "", "")), return_tensors="pt")["input_ids"].to(dev)
        gen = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        text = tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
        out.append(text.split("\n\nHuman:")[0].strip())
    return out
