"""Memory estimates: the arithmetic, and plans that agree with how the paper's models were trained."""

import pytest

from w2s_helpers.core import memory


def test_full_fine_tuning_of_mistral_in_fp32_needs_over_110_gb():
    est = memory.estimate(memory.SHAPES["mistral-7b"], batch=2, seq_len=512, weight_bytes=4)
    static = est["weights"] + est["gradients"] + est["optimiser"]
    assert static * memory.GIB / 1e9 == pytest.approx(7242e6 * 16 / 1e9)       # 4 + 4 + 8 bytes per parameter
    assert static * memory.GIB > 110e9


def test_sharding_divides_the_states_and_checkpointing_the_activations():
    shape = memory.SHAPES["opt-6.7b"]
    one = memory.estimate(shape, 8, 512, 2)
    four = memory.estimate(shape, 8, 512, 2, devices=4, shard=True)
    assert four["weights"] == pytest.approx(one["weights"] / 4) and four["activations"] == one["activations"]
    assert memory.estimate(shape, 8, 512, 2, checkpointing=True)["activations"] < one["activations"] / 5
    lora = memory.estimate(shape, 8, 512, 2, trainable_m=memory.lora_trainable_m(shape))
    assert lora["optimiser"] < one["optimiser"] / 100 and lora["weights"] == one["weights"]


def test_plans_pick_what_fits():
    words, est = memory.plan(memory.SHAPES["mistral-7b"], gpu_gib=40, gpus=4, batch=2, seq_len=512)
    assert words.startswith("FSDP full-shard over 4") and est["total"] <= 32     # the paper: FSDP on 4xA100-40G
    assert memory.plan(memory.SHAPES["mistral-7b"], gpu_gib=40, gpus=1, batch=2, seq_len=512)[0].startswith("LoRA")
    assert memory.plan(memory.SHAPES["gpt2"], gpu_gib=24, gpus=1, batch=8, seq_len=512)[0] == "one GPU, every weight"
    assert memory.plan(memory.SHAPES["mistral-7b"], gpu_gib=8, gpus=1, batch=2, seq_len=512)[0] == "does not fit"
    # a policy (no FSDP for policy jobs): LoRA where a reward model would shard
    assert memory.plan(memory.SHAPES["mistral-7b"], gpu_gib=40, gpus=4, batch=2, seq_len=512,
                       shard=False)[0].startswith("LoRA")


def test_shapes_from_configs_count_parameters_closely():
    from transformers import GPT2Config, LlamaConfig

    assert memory.Shape.of(GPT2Config()).params_m == pytest.approx(124, rel=0.03)
    mistral = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                          num_key_value_heads=8, vocab_size=32000)
    assert memory.Shape.of(mistral).params_m == pytest.approx(7242, rel=0.03)


def test_the_announcement_names_the_estimate_and_says_when_there_is_no_plan(monkeypatch):
    import torch
    from transformers import GPT2Config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = memory.announce("gpt2", GPT2Config(), batch=16, seq_len=512)
    assert line.startswith("gpt2:") and "GiB per device" in line and "no GPU visible" in line
