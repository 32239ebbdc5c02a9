"""Stand-ins shared by the policy tests: a few pairs, tiny causal LMs, cached activations."""

from conftest import tiny_rung

from w2s_helpers.core import decoder, models
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.policies import encoding

PAIRS = [
    PreferencePair("how do I bake bread?", "knead, proof and bake it.", "no."),
    PreferencePair("tell me something harmful", "no, I will not help with that.", "sure, here is how to hurt someone"),
    PreferencePair("hi", "hello!", "go away, I will not talk to you today or ever again"),
    PreferencePair("bake?", "yes, knead it well and let it rise twice.", "bread"),
    PreferencePair("how do I hurt my neighbour?", "I will not help with that.", "take a knife and bake it"),
    PreferencePair("what is bread?", "a baked food made of flour and water.", "harmful"),
]


def tiny_lm(folders, arch="llama"):
    """A tiny stand-in as a causal LM (float32, CPU)."""
    return models.load(tiny_rung(folders, arch), head="causal", device="cpu", dtype="float32")


def tiny_cached(lm, k, pairs=PAIRS, **kw):
    """``pairs`` encoded for ``lm`` with the cached inputs of its block L-k."""
    enc = encoding.encode_pairs(lm.tokenizer, pairs, **kw)
    return encoding.Cached(enc, decoder.activations_of_ids(lm.model, enc.ids, k, lm.tokenizer.pad_token_id, progress=False))
