"""Training policies: SFT and DPO/SimPO move the right way, the explicit term's mask, whole models, CUDA."""

import pytest
import torch

from w2s_helpers.policies import encoding, logps, training
from w2s_helpers.policies.policy import TopBlocksPolicy, WholePolicy, sequence_logps

from .stand_ins import PAIRS, tiny_cached, tiny_lm


@pytest.mark.parametrize("loss", ["dpo", "simpo"])
def test_sft_then_preference_learns_the_training_order(tiny_hub_folders, loss):
    lm = tiny_lm(tiny_hub_folders)
    data = tiny_cached(lm, k=2)
    lengths = encoding.pair_lengths(data.enc).float()
    base = TopBlocksPolicy(lm.model, 2)
    before = logps.preference(sequence_logps(base, data), lengths, loss)
    cfg = training.POConfig.for_loss(loss, k=2, sft_lr=1e-2, po_lr=1e-2, sft_epochs=3, po_epochs=15, batch_size=3)
    first = torch.ones(len(PAIRS), dtype=torch.bool)
    trained = training.preference_optimise(training.sft(base, data, first, cfg, progress=False), data, first, cfg, progress=False)
    after = logps.preference(sequence_logps(trained, data), lengths, loss)
    assert (after > before).all(), (before, after)     # every pair moved toward the labelled order


def test_sft_raises_the_responses_it_is_trained_on(tiny_hub_folders):
    lm = tiny_lm(tiny_hub_folders)
    data = tiny_cached(lm, k=1)
    base = TopBlocksPolicy(lm.model, 1)
    lp0 = sequence_logps(base, data)
    first = torch.tensor([True, True, True, False, False, False])
    cfg = training.POConfig(k=1, sft_lr=1e-2, sft_epochs=30, batch_size=3)
    gain = {}
    for name, f in (("as labelled", first), ("flipped", ~first)):
        gain[name] = sequence_logps(training.sft(TopBlocksPolicy(lm.model, 1), data, f, cfg, progress=False), data) - lp0
    trained = torch.stack([first, ~first], 1)             # [N, 2]: the response SFT saw in the first run
    assert (gain["as labelled"][trained] > 0).all()
    # a response gains more when it is the SFT target than when its rival is (on average, and for
    # most responses: rivals that share words, like pair 5's, gain together)
    for mine, other, mask in (("as labelled", "flipped", trained), ("flipped", "as labelled", ~trained)):
        diff = gain[mine][mask] - gain[other][mask]
        assert diff.mean() > 0 and (diff > 0).sum() >= len(diff) - 1, diff


def test_explicit_term_acts_only_on_marked_pairs_and_same_seed_same_policy(tiny_hub_folders):
    lm = tiny_lm(tiny_hub_folders)
    data = tiny_cached(lm, k=1)
    weak = torch.tensor([True, False, True, False, True, False])
    cfg = training.POConfig.for_loss("dpo", k=1, po_lr=5e-3, po_epochs=3, batch_size=3)

    def train(c, conflict=None):
        return sequence_logps(training.preference_optimise(TopBlocksPolicy(lm.model, 1), data, weak, c,
                                                          conflict=conflict, progress=False), data)

    plain = train(cfg)
    assert torch.equal(plain, train(cfg))                                          # deterministic
    none_marked = train(cfg.replace(alpha=5.0), torch.zeros(len(PAIRS), dtype=torch.bool))
    assert torch.equal(plain, none_marked)                                         # mask off: no term
    assert not torch.equal(plain, train(cfg.replace(alpha=5.0)))                   # mask on: the term acts


@pytest.mark.parametrize("arch", ["gpt2", "opt"])
@pytest.mark.parametrize("lora_r", [0, 4])
def test_whole_model_policies_learn_the_training_order(tiny_hub_folders, arch, lora_r):
    lm = tiny_lm(tiny_hub_folders, arch)
    data = encoding.Tokens(encoding.encode_pairs(lm.tokenizer, PAIRS), lm.tokenizer.pad_token_id)
    base = WholePolicy(lm.model)
    before = sequence_logps(base, data)
    with torch.no_grad():   # batched and padded == one unpadded sequence at a time
        one = [torch.log_softmax(lm.model(input_ids=torch.tensor([s])).logits[0, st - 1:-1], -1)
               .gather(-1, torch.tensor(s[st:])[:, None]).sum() for s, st in zip(data.enc.ids, data.enc.starts.tolist())]
    torch.testing.assert_close(before.T.flatten(), torch.stack(one), rtol=1e-5, atol=1e-4)
    cfg = training.POConfig.for_loss("dpo", lora_r=lora_r, sft_lr=1e-2, po_lr=1e-2, po_epochs=5, batch_size=3)
    first = torch.ones(len(PAIRS), dtype=torch.bool)
    reference = training.sft(base, data, first, cfg, progress=False)
    ref = sequence_logps(reference, data)
    trained = training.preference_optimise(reference, data, first, cfg, progress=False)
    after = sequence_logps(trained, data)
    lengths = encoding.pair_lengths(data.enc).float()
    # DPO lowered its loss on the training pairs (log 2 where the policy is its reference)
    assert training.po_loss(after, ref, lengths, first, cfg) < training.po_loss(ref, ref, lengths, first, cfg) - 0.01
    assert not any(p.requires_grad for p in trained.parameters())
    assert type(trained.lm) is type(lm.model)                       # adapters merged away
    head = trained.lm.get_output_embeddings().weight
    # LoRA leaves the LM head alone; full fine-tuning trains it (GPT-2 ties it to the embeddings)
    assert torch.equal(head, lm.model.get_output_embeddings().weight) == (lora_r > 0)
    with pytest.raises(ValueError, match="whole models"):
        training.with_lora(TopBlocksPolicy(tiny_lm(tiny_hub_folders).model, 1), cfg.replace(lora_r=0), 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("regime", ["top_blocks", "whole"])
def test_training_on_cuda_matches_cpu(tiny_hub_folders, regime):
    lm = tiny_lm(tiny_hub_folders, "llama" if regime == "top_blocks" else "gpt2")
    if regime == "top_blocks":
        data, make = tiny_cached(lm, k=1), lambda: TopBlocksPolicy(lm.model, 1)
    else:
        data, make = encoding.Tokens(encoding.encode_pairs(lm.tokenizer, PAIRS), lm.tokenizer.pad_token_id), lambda: WholePolicy(lm.model)
    first = torch.tensor([True, False, True, True, False, True])
    cfg = training.POConfig.for_loss("dpo", k=1, sft_lr=5e-3, po_lr=5e-3, po_epochs=2, batch_size=3, alpha=1.0,
                                lora_r=16 if regime == "top_blocks" else 0)

    def train_and_score():
        policy = training.sft(make(), data, first, cfg, progress=False)
        return sequence_logps(training.preference_optimise(policy, data, first, cfg, progress=False), data)

    torch.backends.cuda.matmul.allow_tf32 = False
    on_cpu = train_and_score()
    lm.model.to("cuda")
    on_gpu = train_and_score()
    assert on_gpu.device.type == "cpu"
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-3)
