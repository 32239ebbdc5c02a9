"""Answers from a policy: rebuild the whole causal LM, then decode greedily."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from w2s_helpers.core.data import PreferencePair
from w2s_helpers.policies.encoding import prompt_text
from w2s_helpers.policies.policy import TopBlocksPolicy


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
