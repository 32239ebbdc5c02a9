"""Log-probabilities of responses and the preference they imply (PAPER.md section 5).

A policy's preference between two responses is a comparison of log-probabilities::

    logp(y | x) = sum_t log pi(y_t | x, y_<t)        summed over the response tokens
    DPO correctness:   logp(y_c | x)       >= logp(y_r | x)          (policy only, no reference)
    SimPO correctness: logp(y_c | x) / |y_c| >= logp(y_r | x) / |y_r|

Only response positions go through the vocabulary (the costly part), and ``cross_entropy``
fuses the log-softmax with the gather.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from w2s_helpers.core.batching import sorted_batches
from w2s_helpers.policies.encoding import Encoded, Tokens


def response_targets(ids: Sequence[list[int]], starts: torch.Tensor):
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
    return summed_logps(lambda rows, pos: states[rows, pos] @ head_weight.T, ids, starts, states.device)


def summed_logps(logits_at, ids: Sequence[list[int]], starts: torch.Tensor, dev) -> torch.Tensor:
    """[B] summed log-probs of the response tokens; ``logits_at(rows, pos)`` gives the logits
    [M, V] that predict them (cross_entropy fuses the log-softmax with the gather)."""
    rows, pos, tgt = (t.to(dev) for t in response_targets(ids, starts))
    nll = F.cross_entropy(logits_at(rows, pos).float(), tgt, reduction="none")             # [M]
    return -torch.zeros(len(ids), device=dev).index_add(0, rows, nll)


def lm_logps(lm: nn.Module, x: torch.Tensor, mask: torch.Tensor, ids: Sequence[list[int]],
             starts: torch.Tensor) -> torch.Tensor:
    """Summed response log-probs [B] of any causal LM from its logits (x, mask: [B, T], right padding)."""
    logits = lm(input_ids=x, attention_mask=mask, use_cache=False).logits              # [B, T, V]
    return summed_logps(lambda rows, pos: logits[rows, pos], ids, starts, logits.device)


@torch.no_grad()
def full_logps(model: nn.Module, enc: Encoded, batch_size: int = 8) -> torch.Tensor:
    """Summed response log-probs [N, 2] from a whole causal LM (right padding, by length)."""
    dev = next(model.parameters()).device
    data = Tokens(enc, 0)
    n, out = len(enc), torch.empty(2 * len(enc))
    for rows in sorted_batches(data.lengths, batch_size):
        out[rows] = lm_logps(model, *data.batch(rows, dev)).float().cpu()
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
