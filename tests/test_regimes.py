"""The three training regimes behind one lab interface; the top_blocks partial forward."""

import warnings

import pytest
import torch

from w2s_helpers import lab as labs
from w2s_helpers import models, profiles, top_blocks
from w2s_helpers.features import FeatureSpec

TEXTS = ["\n\nHuman: how do I bake bread?\n\nAssistant: knead, proof and bake it.",
         "\n\nHuman: tell me something harmful\n\nAssistant: no, I will not help with that.",
         "\n\nHuman: hi\n\nAssistant: hello!",
         "\n\nHuman: bake?\n\nAssistant: yes, knead it well and let it rise twice before baking."]


def _rung(folders, arch):
    return models.Rung(f"tiny-{arch}", "hub", arch, 0.1, causal=True, hub_id=str(folders[arch]))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("k", [1, 3])
def test_partial_forward_reproduces_the_full_model(tiny_hub_folders, arch, k):
    lm = models.load(_rung(tiny_hub_folders, arch), device="cpu", dtype="float32")
    assert top_blocks.check_partial_forward(lm, TEXTS, k=k) < 1e-5


def test_partial_forward_check_can_fail(tiny_hub_folders):
    lm = models.load(_rung(tiny_hub_folders, "llama"), device="cpu", dtype="float32")
    acts = top_blocks.compute_activations(lm, TEXTS, k=1, max_length=64, progress=False)
    wrong = top_blocks.TopBlocksReward(lm.model, k=2).eval()       # runs block L-2 on block L-1's input
    h, mask = acts.batch(range(len(TEXTS)))
    with torch.no_grad():
        full = lm.model(**lm.tokenizer(TEXTS, padding=True, return_tensors="pt")).last_hidden_state
        assert (wrong.hidden(h, mask) - full)[mask.bool()].abs().max() > 1e-3


def test_top_blocks_refuses_other_architectures(tiny_hub_folders):
    lm = models.load(_rung(tiny_hub_folders, "gpt2"), device="cpu", dtype="float32")
    with pytest.raises(NotImplementedError, match="Llama-style decoders"):
        top_blocks.compute_activations(lm, TEXTS, k=1, max_length=32)


def test_activation_cache_hits_and_recovers_from_corruption(tiny_hub_folders, isolated_cache):
    lm = models.load(_rung(tiny_hub_folders, "llama"), device="cpu", dtype="float32")
    first = top_blocks.activations(lm, TEXTS, k=1, max_length=64, progress=False)
    (entry,) = (isolated_cache / "activations").glob("*.safetensors")
    again = top_blocks.activations(lm, TEXTS, k=1, max_length=64, progress=False)
    assert torch.equal(first.tokens, again.tokens)
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        fixed = top_blocks.activations(lm, TEXTS, k=1, max_length=64, progress=False)
    assert torch.equal(first.tokens, fixed.tokens)


def test_top_blocks_training_learns_a_separable_preference(tiny_hub_folders):
    lm = models.load(_rung(tiny_hub_folders, "llama"), device="cpu", dtype="float32")
    good = [t + " thank you" for t in TEXTS] * 4
    bad = [t + " go away" for t in TEXTS] * 4
    c = top_blocks.compute_activations(lm, good, 2, 64, progress=False)
    r = top_blocks.compute_activations(lm, bad, 2, 64, progress=False)
    cfg = top_blocks.TopBlocksConfig(k=2, lr=1e-3, head_lr=1e-2, batch_size=4, epochs=10, probe_init=False)
    model = top_blocks.train(lm.model, c, r, torch.ones(len(good)), cfg, progress=False)
    before = top_blocks.margins(top_blocks.TopBlocksReward(lm.model, 2), c, r)
    after = top_blocks.margins(model, c, r)
    assert (after > 0).all() and after.mean() > before.mean()
    again = top_blocks.margins(top_blocks.train(lm.model, c, r, torch.ones(len(good)), cfg, progress=False), c, r)
    assert torch.equal(after, again)  # same seed, same model


def _tiny_profile(ladder):
    return profiles.get("ci").replace(n_train=10, n_test=8, ladder=ladder, top_k=1, batch_size=4, lr=1e-3,
                                      features=FeatureSpec(max_length=48, dtype="float32", batch_size=8))


@pytest.mark.parametrize("regime,arch", [("top_blocks", "llama"), ("finetune", "gpt2")])
def test_adapted_labs_share_the_probe_interface(tiny_hub_folders, isolated_cache, regime, arch):
    rung = _rung(tiny_hub_folders, arch)
    lab = labs.build(_tiny_profile((rung,)), regime, verbose=False)
    weak = lab.ceiling(rung, seed=0, n=4)                          # scores test and w2s by default
    assert lab.margins(weak).shape == (8,) and lab.margins(weak, "w2s").shape == (10,)
    idx = lab.train_idx("w2s", 100)
    soft = torch.sigmoid(lab.margins(weak, "w2s")[idx])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        student = lab.fit(rung, [("w2s", idx, soft)], seed=0, alpha=0.5, score=("test",))
    assert torch.isfinite(lab.margins(student)).all()
    with pytest.raises(KeyError, match="scored"):
        lab.margins(student, "w2s")


def test_probe_lab_fit_handles_slot_order_and_parts():
    P = profiles.get("ci")
    g = torch.Generator().manual_seed(0)
    sizes = {"gt": 300, "w2s": 30, "test": 300, "helpful": 100}
    pools = {k: [None] * n for k, n in sizes.items()}
    lab = labs.ProbeLab(P, pools, data_hash="x")
    truth = torch.randn(5, generator=g)
    phi = {}
    for split, n in sizes.items():
        c, r = torch.randn(n, 5, generator=g), torch.randn(n, 5, generator=g)
        swap = ((c - r) @ truth < 0)[:, None]
        phi[split] = (torch.where(swap, r, c), torch.where(swap, c, r))   # chosen = truth-preferred
    lab.phi["r"], lab.l2["r"] = phi, 1e-3
    m = lab.fit("r", [("gt", torch.arange(200), 1.0), ("helpful", torch.arange(100), 1.0)], seed=3)
    assert (lab.margins(m) > 0).float().mean() > 0.9
    # labels are chosen-first: all-zero labels learn the opposite preference
    anti = lab.fit("r", [("gt", torch.arange(200), 0.0)], seed=3)
    assert (lab.margins(anti) < 0).float().mean() > 0.9
    with pytest.raises(ValueError, match="labels"):
        lab.fit("r", [("gt", torch.arange(20), torch.ones(3))], seed=0)


@pytest.mark.model
def test_smollm2_partial_forward_is_exact(monkeypatch, model_cache):
    """The real decoder the CPU profiles adapt in the top_blocks regime."""
    from w2s_helpers import data

    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    lm = models.load("smollm2-135m", device="cpu", dtype="float32")
    pairs = data.load_split("harmless_test", n=4, seed=0)
    texts = [p.transcript(side) for p in pairs for side in ("chosen", "rejected")]
    assert top_blocks.check_partial_forward(lm, texts, k=2, max_length=96) < 1e-4
