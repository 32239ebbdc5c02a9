"""Chapter 4's policies: tokenisation, the partial forward, agreement with trl, training and the lab.

Tiny random-initialised Llama and Qwen2 decoders (SmolLM2's and Qwen2.5's classes) stand in for
the real rungs: these tests check plumbing and the direction of learning, never capability.
"""

import copy

import pytest
import torch

from w2s_helpers import models, po_lab, profiles
from w2s_helpers import policy as pol
from w2s_helpers.data import PreferencePair

PAIRS = [
    PreferencePair("how do I bake bread?", "knead, proof and bake it.", "no."),
    PreferencePair("tell me something harmful", "no, I will not help with that.", "sure, here is how to hurt someone"),
    PreferencePair("hi", "hello!", "go away, I will not talk to you today or ever again"),
    PreferencePair("bake?", "yes, knead it well and let it rise twice.", "bread"),
    PreferencePair("how do I hurt my neighbour?", "I will not help with that.", "take a knife and bake it"),
    PreferencePair("what is bread?", "a baked food made of flour and water.", "harmful"),
]


def _rung(folders, arch):
    return models.Rung(f"tiny-{arch}", "hub", arch, 0.1, causal=True, hub_id=str(folders[arch]))


def _lm(folders, arch="llama"):
    return models.load(_rung(folders, arch), head="causal", device="cpu", dtype="float32")


def _cached(lm, k, pairs=PAIRS, **kw):
    enc = pol.encode_pairs(lm.tokenizer, pairs, **kw)
    return pol.Cached(enc, pol.activations_of_ids(lm.model, enc.ids, k, lm.tokenizer.pad_token_id, progress=False))


def test_encode_pairs_layout_and_truncation(tiny_hub_folders):
    tok = _lm(tiny_hub_folders).tokenizer
    enc = pol.encode_pairs(tok, PAIRS)
    n = len(PAIRS)
    assert len(enc) == n and len(enc.ids) == 2 * n
    for r in range(2 * n):
        assert enc.ids[r][-1] == tok.eos_token_id                     # trl appends EOS
        assert enc.ids[r][: enc.starts[r]] == enc.ids[(r + n) % (2 * n)][: enc.starts[(r + n) % (2 * n)]]
    cut = pol.encode_pairs(tok, PAIRS, max_prompt=3, max_response=2)
    for full, short, s0, s1 in zip(enc.ids, cut.ids, enc.starts.tolist(), cut.starts.tolist()):
        assert s1 == min(3, s0)
        assert short[:s1] == full[s0 - s1: s0]                        # the last prompt tokens
        assert short[s1:] == full[s0: s0 + 2]                         # the first response tokens
    assert pol.pair_lengths(cut).max() == 2
    taken = enc.take([2, 0])
    assert taken.ids == [enc.ids[2], enc.ids[0], enc.ids[n + 2], enc.ids[n]]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("k", [1, 3])
def test_partial_forward_gives_the_whole_models_logps(tiny_hub_folders, arch, k):
    lm = _lm(tiny_hub_folders, arch)
    enc = pol.encode_pairs(lm.tokenizer, PAIRS)
    assert pol.check_policy_forward(lm, enc, k) < 1e-5


def test_partial_forward_check_can_fail(tiny_hub_folders):
    lm = _lm(tiny_hub_folders)
    data = _cached(lm, k=1)
    wrong = pol.TopBlocksPolicy(lm.model, k=2)                        # block L-2 on block L-1's input
    full = pol.full_logps(lm.model, data.enc)
    assert (pol.sequence_logps(wrong, data) - full).abs().max() > 1e-3


@pytest.mark.parametrize("loss", ["dpo", "simpo"])
def test_our_loss_matches_trl_at_alpha_zero(tiny_hub_folders, loss):
    lm = _lm(tiny_hub_folders)
    policy = copy.deepcopy(lm.model)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in policy.model.layers[-1].parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    enc = pol.encode_pairs(lm.tokenizer, PAIRS)
    ours_lp, ref_lp = pol.full_logps(policy, enc), pol.full_logps(lm.model, enc)
    first = torch.ones(len(PAIRS), dtype=torch.bool)
    ours = pol.po_loss(ours_lp, ref_lp, pol.pair_lengths(enc).float(), first, pol.POConfig.for_loss(loss)).item()
    theirs = pol.trl_loss(policy, lm.tokenizer, PAIRS, loss, ref_model=lm.model if loss == "dpo" else None)
    assert ours == pytest.approx(theirs, abs=1e-5)
    if loss == "dpo":  # the check has teeth: the policy differs from its reference
        assert abs(ours - torch.log(torch.tensor(2.0)).item()) > 1e-3
        swapped = pol.po_loss(ours_lp.flip(1), ref_lp.flip(1), pol.pair_lengths(enc).float(), first,
                              pol.POConfig.for_loss(loss)).item()
        assert abs(swapped - theirs) > 1e-4


def test_our_sft_loss_matches_trl(tiny_hub_folders):
    lm = _lm(tiny_hub_folders)
    enc = pol.encode_pairs(lm.tokenizer, PAIRS)
    lp = pol.full_logps(lm.model, enc)
    ours = (-lp[:, 0].sum() / pol.pair_lengths(enc)[:, 0].sum()).item()
    assert ours == pytest.approx(pol.trl_sft_loss(lm.model, lm.tokenizer, PAIRS), abs=1e-5)
    per_sequence = (-(lp[:, 0] / pol.pair_lengths(enc)[:, 0]).mean()).item()   # a plausible wrong average
    assert abs(per_sequence - ours) > 1e-4


@pytest.mark.parametrize("loss", ["dpo", "simpo"])
def test_sft_then_preference_learns_the_training_order(tiny_hub_folders, loss):
    lm = _lm(tiny_hub_folders)
    data = _cached(lm, k=2)
    lengths = pol.pair_lengths(data.enc).float()
    base = pol.TopBlocksPolicy(lm.model, 2)
    before = pol.preference(pol.sequence_logps(base, data), lengths, loss)
    cfg = pol.POConfig.for_loss(loss, k=2, sft_lr=1e-2, po_lr=1e-2, sft_epochs=3, po_epochs=15, batch_size=3)
    first = torch.ones(len(PAIRS), dtype=torch.bool)
    trained = pol.preference_optimise(pol.sft(base, data, first, cfg, progress=False), data, first, cfg, progress=False)
    after = pol.preference(pol.sequence_logps(trained, data), lengths, loss)
    assert (after > before).all(), (before, after)     # every pair moved toward the labelled order


def test_sft_raises_the_responses_it_is_trained_on(tiny_hub_folders):
    lm = _lm(tiny_hub_folders)
    data = _cached(lm, k=1)
    base = pol.TopBlocksPolicy(lm.model, 1)
    lp0 = pol.sequence_logps(base, data)
    first = torch.tensor([True, True, True, False, False, False])
    cfg = pol.POConfig(k=1, sft_lr=1e-2, sft_epochs=30, batch_size=3)
    gain = {}
    for name, f in (("as labelled", first), ("flipped", ~first)):
        gain[name] = pol.sequence_logps(pol.sft(pol.TopBlocksPolicy(lm.model, 1), data, f, cfg, progress=False), data) - lp0
    trained = torch.stack([first, ~first], 1)             # [N, 2]: the response SFT saw in the first run
    assert (gain["as labelled"][trained] > 0).all()
    # a response gains more when it is the SFT target than when its rival is (on average, and for
    # most responses: rivals that share words, like pair 5's, gain together)
    for mine, other, mask in (("as labelled", "flipped", trained), ("flipped", "as labelled", ~trained)):
        diff = gain[mine][mask] - gain[other][mask]
        assert diff.mean() > 0 and (diff > 0).sum() >= len(diff) - 1, diff


def test_explicit_term_acts_only_on_marked_pairs_and_same_seed_same_policy(tiny_hub_folders):
    lm = _lm(tiny_hub_folders)
    data = _cached(lm, k=1)
    weak = torch.tensor([True, False, True, False, True, False])
    cfg = pol.POConfig.for_loss("dpo", k=1, po_lr=5e-3, po_epochs=3, batch_size=3)

    def train(c, conflict=None):
        return pol.sequence_logps(pol.preference_optimise(pol.TopBlocksPolicy(lm.model, 1), data, weak, c,
                                                          conflict=conflict, progress=False), data)

    plain = train(cfg)
    assert torch.equal(plain, train(cfg))                                          # deterministic
    none_marked = train(cfg.replace(alpha=5.0), torch.zeros(len(PAIRS), dtype=torch.bool))
    assert torch.equal(plain, none_marked)                                         # mask off: no term
    assert not torch.equal(plain, train(cfg.replace(alpha=5.0)))                   # mask on: the term acts


def _tiny_profile(folders, arch="llama", **kw):
    rung = _rung(folders, arch)
    po = profiles.POSettings(weak=rung, strong=rung, n_train=6, n_test=5, n_helpful=3, max_prompt=16,
                             max_response=8, k=1, batch_size=3, **kw)
    return profiles.get("ci").replace(po=po)


@pytest.mark.parametrize("arch", ["gpt2", "opt"])
@pytest.mark.parametrize("lora_r", [0, 4])
def test_whole_model_policies_learn_the_training_order(tiny_hub_folders, arch, lora_r):
    lm = _lm(tiny_hub_folders, arch)
    data = pol.Tokens(pol.encode_pairs(lm.tokenizer, PAIRS), lm.tokenizer.pad_token_id)
    base = pol.WholePolicy(lm.model)
    before = pol.sequence_logps(base, data)
    with torch.no_grad():   # batched and padded == one unpadded sequence at a time
        one = [torch.log_softmax(lm.model(input_ids=torch.tensor([s])).logits[0, st - 1:-1], -1)
               .gather(-1, torch.tensor(s[st:])[:, None]).sum() for s, st in zip(data.enc.ids, data.enc.starts.tolist())]
    torch.testing.assert_close(before.T.flatten(), torch.stack(one), rtol=1e-5, atol=1e-4)
    cfg = pol.POConfig.for_loss("dpo", lora_r=lora_r, sft_lr=1e-2, po_lr=1e-2, po_epochs=5, batch_size=3)
    first = torch.ones(len(PAIRS), dtype=torch.bool)
    trained = pol.preference_optimise(pol.sft(base, data, first, cfg, progress=False), data, first, cfg, progress=False)
    after = pol.sequence_logps(trained, data)
    assert ((after[:, 0] - after[:, 1]) > (before[:, 0] - before[:, 1])).all()
    assert not any(p.requires_grad for p in trained.parameters())
    assert type(trained.lm) is type(lm.model)                       # adapters merged away
    head = trained.lm.get_output_embeddings().weight
    # LoRA leaves the LM head alone; full fine-tuning trains it (GPT-2 ties it to the embeddings)
    assert torch.equal(head, lm.model.get_output_embeddings().weight) == (lora_r > 0)
    with pytest.raises(ValueError, match="whole models"):
        pol._with_lora(pol.TopBlocksPolicy(_lm(tiny_hub_folders).model, 1), cfg.replace(lora_r=0), 0)


def test_policy_lab_whole_regime_trains_keeps_and_generates(tiny_hub_folders, isolated_cache):
    P = _tiny_profile(tiny_hub_folders, "gpt2", regime="whole", lora_r=0)
    lab = po_lab.PolicyLab(P, progress=False)
    assert isinstance(lab.data(P.po.strong, "test"), pol.Tokens)
    cfg = pol.POConfig.for_loss("dpo", lora_r=0, batch_size=3, po_epochs=2)
    parts = [("gt", None, True)]
    run = lab.run(P.po.strong, cfg, parts, keep=True)
    assert run.logps["test"].shape == (5, 2)
    model = lab.policy_model(P.po.strong, cfg, parts)
    assert pol.generate(model, lab.loaded(P.po.strong).tokenizer, ["hi"], max_new_tokens=3)[0] is not None


def test_policy_lab_trains_once_and_loads_after(tiny_hub_folders, isolated_cache, monkeypatch):
    P = _tiny_profile(tiny_hub_folders)
    lab = po_lab.PolicyLab(P, progress=False)
    cfg = pol.POConfig.for_loss("simpo", k=1, batch_size=3)
    parts = [("w2s", None, torch.tensor([True, False, True, True, False, True])), ("helpful", None, True)]
    run = lab.run(P.po.strong, cfg, parts, score=("test", "w2s"), keep=True)
    assert run.logps["test"].shape == (5, 2) and run.logps["w2s"].shape == (6, 2)
    assert run.correct("test", "simpo").dtype == torch.bool
    model = lab.policy_model(P.po.strong, cfg, parts, ("test", "w2s"))
    assert pol.generate(model, lab.loaded(P.po.strong).tokenizer, ["hi"], max_new_tokens=3)[0] is not None

    def refuse(*a, **k):
        raise AssertionError("trained again instead of loading")

    monkeypatch.setattr(pol, "sft", refuse)
    monkeypatch.setattr(pol, "preference_optimise", refuse)
    again = po_lab.PolicyLab(P, progress=False).run(P.po.strong, cfg, parts, score=("test", "w2s"), keep=True)
    assert torch.equal(again.logps["test"], run.logps["test"]) and again.seconds == run.seconds
    with pytest.raises(ValueError, match="labels"):
        lab.run(P.po.strong, cfg, [("w2s", None, torch.ones(3, dtype=torch.bool))])
    with pytest.raises(FileNotFoundError, match="kept policy"):
        lab.policy_model(P.po.strong, cfg.replace(seed=7), parts)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("regime", ["top_blocks", "whole"])
def test_training_on_cuda_matches_cpu(tiny_hub_folders, regime):
    lm = _lm(tiny_hub_folders, "llama" if regime == "top_blocks" else "gpt2")
    if regime == "top_blocks":
        data, make = _cached(lm, k=1), lambda: pol.TopBlocksPolicy(lm.model, 1)
    else:
        data, make = pol.Tokens(pol.encode_pairs(lm.tokenizer, PAIRS), lm.tokenizer.pad_token_id), lambda: pol.WholePolicy(lm.model)
    first = torch.tensor([True, False, True, True, False, True])
    cfg = pol.POConfig.for_loss("dpo", k=1, sft_lr=5e-3, po_lr=5e-3, po_epochs=2, batch_size=3, alpha=1.0,
                                lora_r=16 if regime == "top_blocks" else 0)

    def train_and_score():
        policy = pol.sft(make(), data, first, cfg, progress=False)
        return pol.sequence_logps(pol.preference_optimise(policy, data, first, cfg, progress=False), data)

    torch.backends.cuda.matmul.allow_tf32 = False
    on_cpu = train_and_score()
    lm.model.to("cuda")
    on_gpu = train_and_score()
    assert on_gpu.device.type == "cpu"
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-3)
