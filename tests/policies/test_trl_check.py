"""Our DPO, SimPO and SFT losses against trl's trainers on the same batch."""

import copy

import pytest
import torch

from w2s_helpers.policies import encoding, logps, training, trl_check

from .stand_ins import PAIRS, tiny_lm


@pytest.mark.parametrize("loss", ["dpo", "simpo"])
def test_our_loss_matches_trl_at_alpha_zero(tiny_hub_folders, loss):
    lm = tiny_lm(tiny_hub_folders)
    policy = copy.deepcopy(lm.model)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in policy.model.layers[-1].parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    enc = encoding.encode_pairs(lm.tokenizer, PAIRS)
    ours_lp, ref_lp = logps.full_logps(policy, enc), logps.full_logps(lm.model, enc)
    first = torch.ones(len(PAIRS), dtype=torch.bool)
    ours = training.po_loss(ours_lp, ref_lp, encoding.pair_lengths(enc).float(), first, training.POConfig.for_loss(loss)).item()
    theirs = trl_check.trl_loss(policy, lm.tokenizer, PAIRS, loss, ref_model=lm.model if loss == "dpo" else None)
    assert ours == pytest.approx(theirs, abs=1e-5)
    if loss == "dpo":  # the check has teeth: the policy differs from its reference
        assert abs(ours - torch.log(torch.tensor(2.0)).item()) > 1e-3
        swapped = training.po_loss(ours_lp.flip(1), ref_lp.flip(1), encoding.pair_lengths(enc).float(), first,
                              training.POConfig.for_loss(loss)).item()
        assert abs(swapped - theirs) > 1e-4


def test_our_sft_loss_matches_trl(tiny_hub_folders):
    lm = tiny_lm(tiny_hub_folders)
    enc = encoding.encode_pairs(lm.tokenizer, PAIRS)
    lp = logps.full_logps(lm.model, enc)
    ours = (-lp[:, 0].sum() / encoding.pair_lengths(enc)[:, 0].sum()).item()
    assert ours == pytest.approx(trl_check.trl_sft_loss(lm.model, lm.tokenizer, PAIRS), abs=1e-5)
    per_sequence = (-(lp[:, 0] / encoding.pair_lengths(enc)[:, 0]).mean()).item()   # a plausible wrong average
    assert abs(per_sequence - ours) > 1e-4
