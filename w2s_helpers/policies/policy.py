"""The two kinds of policy, and their log-probs over a batch of encoded pairs.

    TopBlocksPolicy   the top k blocks of a causal LM (LoRA trains them) over cached inputs of
                      block L-k, and its frozen LM head: the CPU profiles
    WholePolicy       a whole causal LM, every weight or LoRA on every linear layer: ``paper``

Both answer ``logps(*batch) -> [B]`` summed response log-probs, so one training loop
(:mod:`w2s_helpers.policies.training`) serves both. :func:`check_policy_forward` checks the
partial forward against the whole model's log-probs.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from w2s_helpers.core import work
from w2s_helpers.core.batching import sorted_batches
from w2s_helpers.core.decoder import TopBlocks, activations_of_ids
from w2s_helpers.policies.encoding import Cached, Encoded, Tokens
from w2s_helpers.policies.logps import full_logps, lm_logps, token_logps


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
        self.eval()      # dropout off for good: training steps run in eval mode too (as trl disables dropout)

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    def logps(self, x: torch.Tensor, mask: torch.Tensor, ids: Sequence[list[int]], starts: torch.Tensor) -> torch.Tensor:
        return lm_logps(self.lm, x, mask, ids, starts)


def device_of(policy: nn.Module) -> torch.device:
    return policy.device if isinstance(policy, WholePolicy) else policy.head_weight.device


def forward_flops(policy: "TopBlocksPolicy | WholePolicy", mask: torch.Tensor, ids: Sequence[list[int]],
                   starts: torch.Tensor) -> float:
    """Matmul FLOPs of one ``policy.logps`` call (for :mod:`w2s_helpers.core.work`): the blocks over
    every token; a top-block policy's LM head over the response tokens only."""
    tokens = int(mask.sum())
    if isinstance(policy, TopBlocksPolicy):
        response = sum(len(s) - int(st) for s, st in zip(ids, starts))
        return 2.0 * work.dense_params(policy) * tokens + 2.0 * policy.head_weight.numel() * response
    return 2.0 * work.dense_params(policy) * tokens


@torch.no_grad()
def sequence_logps(policy: "TopBlocksPolicy | WholePolicy", data: "Cached | Tokens", batch_size: int = 16) -> torch.Tensor:
    """Summed response log-probs [N, 2] (column 0: chosen, 1: rejected), batched by length."""
    n = len(data)
    out = torch.empty(2 * n)
    dev = device_of(policy)
    was_training = policy.training
    policy.eval()
    flops = 0.0
    for rows in sorted_batches(data.lengths, batch_size):
        args = data.batch(rows, dev)
        out[rows] = policy.logps(*args).float().cpu()
        flops += forward_flops(policy, *args[1:]) if work.enabled() else 0.0
    work.record("logps", type(policy).__name__, flops, 0, dtype=work.dtype_of(policy))
    policy.train(was_training)
    return torch.stack([out[:n], out[n:]], 1)


def check_policy_forward(loaded, enc: Encoded, k: int) -> float:
    """Largest |difference| of summed response log-probs between the whole model and the
    partial forward (cached inputs of block L-k through :class:`TopBlocksPolicy`), relative
    to the largest |log-prob|. ~1e-6 in float32."""
    data = Cached(enc, activations_of_ids(loaded.model, enc.ids, k, loaded.tokenizer.pad_token_id, progress=False))
    partial = sequence_logps(TopBlocksPolicy(loaded.model, k).eval(), data)
    full = full_logps(loaded.model, enc)
    return float((partial - full).abs().max() / full.abs().max())
