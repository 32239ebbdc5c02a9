"""The top_blocks regime: training learns a separable preference."""

import torch
from conftest import TRANSCRIPTS, tiny_rung

from w2s_helpers.core import decoder, models
from w2s_helpers.rewards import top_blocks


def test_top_blocks_training_learns_a_separable_preference(tiny_hub_folders):
    lm = models.load(tiny_rung(tiny_hub_folders, "llama"), device="cpu", dtype="float32")
    good = [t + " thank you" for t in TRANSCRIPTS] * 4
    bad = [t + " go away" for t in TRANSCRIPTS] * 4
    c = decoder.compute_activations(lm, good, 2, 64, progress=False)
    r = decoder.compute_activations(lm, bad, 2, 64, progress=False)
    cfg = top_blocks.TopBlocksConfig(k=2, lr=1e-3, head_lr=1e-2, batch_size=4, epochs=10, probe_init=False)
    model = top_blocks.train(lm.model, c, r, torch.ones(len(good)), cfg, progress=False)
    before = top_blocks.margins(top_blocks.TopBlocksReward(lm.model, 2), c, r)
    after = top_blocks.margins(model, c, r)
    assert (after > 0).all() and after.mean() > before.mean()
    again = top_blocks.margins(top_blocks.train(lm.model, c, r, torch.ones(len(good)), cfg, progress=False), c, r)
    assert torch.equal(after, again)  # same seed, same model
