"""The decoder cut in two: the partial forward equals the full model; the activation cache."""

import pytest
import torch
from conftest import TRANSCRIPTS, tiny_rung

from w2s_helpers.core import decoder, models
from w2s_helpers.rewards import top_blocks


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("k", [1, 3])
def test_partial_forward_reproduces_the_full_model(tiny_hub_folders, arch, k):
    lm = models.load(tiny_rung(tiny_hub_folders, arch), device="cpu", dtype="float32")
    assert decoder.check_partial_forward(lm, TRANSCRIPTS, k=k) < 1e-5


def test_partial_forward_check_can_fail(tiny_hub_folders):
    lm = models.load(tiny_rung(tiny_hub_folders, "llama"), device="cpu", dtype="float32")
    acts = decoder.compute_activations(lm, TRANSCRIPTS, k=1, max_length=64, progress=False)
    wrong = top_blocks.TopBlocksReward(lm.model, k=2).eval()       # runs block L-2 on block L-1's input
    h, mask = acts.batch(range(len(TRANSCRIPTS)))
    with torch.no_grad():
        full = lm.model(**lm.tokenizer(TRANSCRIPTS, padding=True, return_tensors="pt")).last_hidden_state
        assert (wrong.hidden(h, mask) - full)[mask.bool()].abs().max() > 1e-3


def test_top_blocks_refuses_other_architectures(tiny_hub_folders):
    lm = models.load(tiny_rung(tiny_hub_folders, "gpt2"), device="cpu", dtype="float32")
    with pytest.raises(NotImplementedError, match="Llama-style decoders"):
        decoder.compute_activations(lm, TRANSCRIPTS, k=1, max_length=32)


def test_activation_cache_hits_and_recovers_from_corruption(tiny_hub_folders, isolated_cache):
    lm = models.load(tiny_rung(tiny_hub_folders, "llama"), device="cpu", dtype="float32")
    first = decoder.activations(lm, TRANSCRIPTS, k=1, max_length=64, progress=False)
    (entry,) = (isolated_cache / "activations").glob("*.safetensors")
    again = decoder.activations(lm, TRANSCRIPTS, k=1, max_length=64, progress=False)
    assert torch.equal(first.tokens, again.tokens)
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        fixed = decoder.activations(lm, TRANSCRIPTS, k=1, max_length=64, progress=False)
    assert torch.equal(first.tokens, fixed.tokens)


@pytest.mark.model
def test_smollm2_partial_forward_is_exact(monkeypatch, model_cache):
    """The real decoder the CPU profiles adapt in the top_blocks regime."""
    from w2s_helpers.core import data

    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    lm = models.load("smollm2-135m", device="cpu", dtype="float32")
    pairs = data.load_split("harmless_test", n=4, seed=0)
    texts = [p.transcript(side) for p in pairs for side in ("chosen", "rejected")]
    assert decoder.check_partial_forward(lm, texts, k=2, max_length=96) < 1e-4
