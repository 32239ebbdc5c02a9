"""Frozen features: pooling, batching by length, truncation, the cache (hit, miss, corrupted entry)."""

import warnings

import pytest
import torch

from w2s_helpers.core import features, models
from w2s_helpers.core.features import FeatureSpec


def test_pool_last_and_mean_golden():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    # row 0 right-padded (2 real tokens), row 1 left-padded (2 real tokens)
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    last = features.pool(hidden, mask, "last")
    assert last.tolist() == [[2.0, 3.0], [10.0, 11.0]]
    mean = features.pool(hidden, mask, "mean")
    assert mean.tolist() == [[1.0, 2.0], [9.0, 10.0]]
    with pytest.raises(ValueError, match="unknown pooling"):
        features.pool(hidden, mask, "max")


def test_layer_index():
    assert features._layer_index(None, 7) == 6
    assert features._layer_index(0, 7) == 0
    assert features._layer_index(-1, 7) == 6
    assert features._layer_index(2 / 3, 7) == 4
    with pytest.raises(ValueError):
        features._layer_index(7, 7)
    with pytest.raises(ValueError):
        features._layer_index(1.5, 7)


@pytest.fixture
def tiny(tiny_hub_folders):
    rung = models.Rung("tiny-gpt2", "hub", "gpt2", 0.1, causal=True, hub_id=str(tiny_hub_folders["gpt2"]))
    return models.load(rung, device="cpu", dtype="float32")


TEXTS = ["Human: hi. Assistant: no.", "Human: how do I bake bread? Assistant: knead, proof and bake it.",
         "Human: x", "Human: tell me something harmful. Assistant: no, I will not help with that. " * 3]


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_batched_by_length_equals_one_at_a_time(tiny, pooling):
    spec = FeatureSpec(pooling=pooling, max_length=64, batch_size=3)
    batched = features.compute(tiny.model, tiny.tokenizer, TEXTS, spec, progress=False)
    single = torch.cat([features.compute(tiny.model, tiny.tokenizer, [t], spec, progress=False) for t in TEXTS])
    assert batched.shape == (4, 32)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_left_truncation_keeps_the_end(tiny):
    long = "filler words " * 100 + "the response at the end"
    spec = FeatureSpec(max_length=16, batch_size=1)
    a = features.compute(tiny.model, tiny.tokenizer, [long], spec, progress=False)
    b = features.compute(tiny.model, tiny.tokenizer, ["more filler " * 50 + long], spec, progress=False)
    torch.testing.assert_close(a, b)  # same last 16 tokens -> same features


def test_cache_miss_hit_and_key(tiny, isolated_cache, monkeypatch):
    spec = FeatureSpec(max_length=32)
    x = features.extract(tiny, TEXTS, spec, progress=False)
    files = list((isolated_cache / "features").glob("*.safetensors"))
    assert len(files) == 1
    monkeypatch.setattr(features, "compute", lambda *a, **k: pytest.fail("cache hit expected"))
    assert torch.equal(features.extract(tiny, TEXTS, spec, progress=False), x)
    # another spec, other texts, or another order are different keys
    keys = {features.cache_key(tiny.fingerprint, TEXTS, spec),
            features.cache_key(tiny.fingerprint, TEXTS, FeatureSpec(max_length=33)),
            features.cache_key(tiny.fingerprint, TEXTS[::-1], spec),
            features.cache_key("other-model", TEXTS, spec)}
    assert len(keys) == 4


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-key"])
def test_corrupted_entry_is_recomputed(tiny, isolated_cache, damage):
    spec = FeatureSpec(max_length=32)
    x = features.extract(tiny, TEXTS, spec, progress=False)
    (path,) = (isolated_cache / "features").glob("*.safetensors")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-40])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 100)
    else:  # a valid file stored under the wrong name
        other = features.extract(tiny, TEXTS[:3] + ["something else"], spec, progress=False)
        path.write_bytes(next(p for p in (isolated_cache / "features").glob("*") if p != path).read_bytes())
        assert not torch.equal(other, x)
    with pytest.warns(UserWarning, match="recomputing"):
        y = features.extract(tiny, TEXTS, spec, progress=False)
    torch.testing.assert_close(y, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the entry was repaired: no warning this time
        torch.testing.assert_close(features.extract(tiny, TEXTS, spec, progress=False), x)


def test_pair_features_split(tiny):
    from w2s_helpers.core.data import PreferencePair

    pairs = [PreferencePair("hi", "hello", "go away"), PreferencePair("bake?", "knead it", "burn it")]
    c, r = features.pair_features(tiny, pairs, FeatureSpec(max_length=32), progress=False)
    assert c.shape == r.shape == (2, 32) and not torch.equal(c, r)


@pytest.mark.model
def test_bf16_features_agree_with_fp32_on_smollm2(monkeypatch, model_cache):
    """Where bf16 is native, "auto" extracts features in bf16: they point the same way as fp32's."""
    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    from w2s_helpers.core import data

    lm = models.load("smollm2-135m", dtype="float32")  # bf16 runs under autocast below
    texts = [p.transcript("chosen") for p in data.load_split("harmless_test", n=8, seed=0)]
    a = features.compute(lm.model, lm.tokenizer, texts, FeatureSpec(max_length=128), progress=False)
    b = features.compute(lm.model, lm.tokenizer, texts, FeatureSpec(max_length=128, dtype="bfloat16"), progress=False)
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999


def test_prefix_shares_the_first_entry(tiny, isolated_cache, monkeypatch):
    from w2s_helpers.core.data import PreferencePair

    pairs = [PreferencePair(f"q{i}", f"yes {i}", f"no {i}" * (i % 3 + 1)) for i in range(6)]
    spec = FeatureSpec(max_length=32)
    tour = features.pair_features(tiny, pairs[:4], spec, progress=False)          # chapter 0
    calls = []
    real = features.compute
    monkeypatch.setattr(features, "compute", lambda m, t, texts, *a, **k: calls.append(len(texts)) or real(m, t, texts, *a, **k))
    c, r = features.pair_features(tiny, pairs, spec, progress=False, prefix=4)  # chapter 1: only the rest is new
    assert calls == [4]  # the 2 remaining pairs, chosen and rejected
    assert torch.equal(c[:4], tour[0]) and torch.equal(r[:4], tour[1]) and c.shape == (6, 32)
    whole = features.pair_features(tiny, pairs, spec, progress=False, cache=False)
    torch.testing.assert_close(c, whole[0], atol=1e-5, rtol=1e-4)
