"""The two kinds of policy: the partial forward gives the whole model's log-probs."""

import pytest

from w2s_helpers.policies import encoding, logps
from w2s_helpers.policies.policy import (
    TopBlocksPolicy,
    check_policy_forward,
    sequence_logps,
)

from .stand_ins import PAIRS, tiny_cached, tiny_lm


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("k", [1, 3])
def test_partial_forward_gives_the_whole_models_logps(tiny_hub_folders, arch, k):
    lm = tiny_lm(tiny_hub_folders, arch)
    enc = encoding.encode_pairs(lm.tokenizer, PAIRS)
    assert check_policy_forward(lm, enc, k) < 1e-5


def test_partial_forward_check_can_fail(tiny_hub_folders):
    lm = tiny_lm(tiny_hub_folders)
    data = tiny_cached(lm, k=1)
    wrong = TopBlocksPolicy(lm.model, k=2)                        # block L-2 on block L-1's input
    full = logps.full_logps(lm.model, data.enc)
    assert (sequence_logps(wrong, data) - full).abs().max() > 1e-3
