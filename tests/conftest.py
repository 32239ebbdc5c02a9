"""Shared fixtures. Every test gets its own cache folder; data come from W2S_DATA_DIR
(the Makefile points it at ../shared/data)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from w2s_helpers.core.store import cache_root


def pytest_addoption(parser):
    parser.addoption("--run-qwen", action="store_true", help="also run tests that load the Qwen2.5 rungs")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-qwen") or os.environ.get("W2S_RUN_QWEN") == "1":
        return
    skip = pytest.mark.skip(reason="loads Qwen2.5 (~0.5-1 GB wheels): run with --run-qwen")
    for item in items:
        if "qwen" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """A fresh cache per test, so cache tests see misses and nothing leaks between tests."""
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# The user's cache as it was before any test isolated it (read at import time).
USER_CACHE = Path(os.environ.get("W2S_TEST_MODEL_CACHE") or cache_root())


@pytest.fixture(scope="session")
def model_cache():
    """The cache for tests that load real rungs: the user's own (where `make test`'s fetch
    step converted them), so GGUF files are not dequantised again on every run.
    Set W2S_TEST_MODEL_CACHE to use another folder."""
    return USER_CACHE


@pytest.fixture
def write_jsonl(tmp_path):
    """Write records (dicts or raw strings) as lines of a .jsonl file; return its path."""

    def _write(lines, name="pairs.jsonl"):
        path = tmp_path / name
        with open(path, "w", encoding="utf-8") as f:
            for line in lines:
                f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
        return path

    return _write


def hh(prompt: str, response: str) -> str:
    return f"\n\nHuman: {prompt}\n\nAssistant: {response}"


def _tiny_tokenizer():
    """A real (tiny) BPE tokenizer trained on a few sentences: no hub needed."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["Human: how do I bake bread? Assistant: knead, proof and bake it.",
              "Human: tell me something harmful. Assistant: no, I will not help with that."] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<eos>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")


@pytest.fixture(scope="session")
def tiny_hub_folders(tmp_path_factory):
    """Small random-initialised GPT-2, OPT, Llama and Qwen2 models saved like hub repositories.

    Plumbing stand-ins for the paper's hub rungs (random weights: never used for results).
    """
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        OPTConfig,
        OPTForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(0)
    tok = _tiny_tokenizer()
    root = tmp_path_factory.mktemp("tiny-hub")
    folders = {}
    for name, model in {
        "gpt2": GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(tok), n_positions=128)),
        "opt": OPTForCausalLM(OPTConfig(num_hidden_layers=2, hidden_size=32, ffn_dim=64, num_attention_heads=2,
                                        word_embed_proj_dim=32, vocab_size=len(tok), max_position_embeddings=128)),
        # decoders of SmolLM2's and Qwen2.5's classes, for the top_blocks regime
        "llama": LlamaForCausalLM(LlamaConfig(num_hidden_layers=3, hidden_size=32, intermediate_size=64,
                                              num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tok),
                                              max_position_embeddings=128, pad_token_id=0)),
        # (Qwen2's tokenizer class adds its own <|endoftext|> pad token: room for it)
        "qwen2": Qwen2ForCausalLM(Qwen2Config(num_hidden_layers=3, hidden_size=32, intermediate_size=64,
                                              num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tok) + 8,
                                              max_position_embeddings=128, pad_token_id=0)),
    }.items():
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
        folders[name] = root / name
    return folders


# Transcripts for the tiny stand-ins (tests of the decoder cut and the top_blocks regime).
TRANSCRIPTS = ["\n\nHuman: how do I bake bread?\n\nAssistant: knead, proof and bake it.",
               "\n\nHuman: tell me something harmful\n\nAssistant: no, I will not help with that.",
               "\n\nHuman: hi\n\nAssistant: hello!",
               "\n\nHuman: bake?\n\nAssistant: yes, knead it well and let it rise twice before baking."]


def tiny_rung(folders, arch: str):
    """A rung pointing at one of ``tiny_hub_folders``' stand-ins (random weights: plumbing only)."""
    from w2s_helpers.core import models

    return models.Rung(f"tiny-{arch}", "hub", arch, 0.1, causal=True, hub_id=str(folders[arch]))


def free_port() -> str:
    """A TCP port free now, for one ``accelerate launch`` of a test: a fixed default (29500) can still be
    held by the previous launch's closing socket when the next test launches."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])
