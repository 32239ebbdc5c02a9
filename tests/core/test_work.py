"""The work ledger: FLOP counts, items, and repeated work."""

import importlib.util
import json

import torch

from w2s_helpers.core import features, models, work
from w2s_helpers.core.features import FeatureSpec
from w2s_helpers.core.paths import REPO_ROOT

TEXTS = ["Human: hi. Assistant: no.", "Human: how do I bake bread? Assistant: knead, proof and bake it."]


def _bench():
    path = REPO_ROOT / "bench" / "bench_course.py"
    spec = importlib.util.spec_from_file_location("bench_course", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dense_params_skip_embeddings_and_count_shared_weights_once():
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight  # tied, as in GPT-2
    body = torch.nn.Linear(4, 4)
    model = torch.nn.ModuleDict({"emb": emb, "body": body, "head": head})
    assert work.dense_params(model) == 20 + 40  # body (16 + 4) + the tied head once, not the table


def test_nothing_is_written_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(work.WORK_ENV, raising=False)
    work.record("features", "m", 1.0, 1, ["a"])
    assert not list(tmp_path.iterdir())


def test_features_record_their_flops_and_items(tiny_hub_folders, monkeypatch, tmp_path):
    rung = models.Rung("tiny-gpt2", "hub", "gpt2", 0.1, causal=True, hub_id=str(tiny_hub_folders["gpt2"]))
    lm = models.load(rung, device="cpu", dtype="float32")
    log = tmp_path / "work.jsonl"
    monkeypatch.setenv(work.WORK_ENV, str(log))
    features.extract(lm, TEXTS, FeatureSpec(max_length=32), progress=False)
    features.extract(lm, TEXTS, FeatureSpec(max_length=32), progress=False)  # a cache hit: no work
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    n_tok = sum(len(lm.tokenizer(t, truncation=True, max_length=32)["input_ids"]) for t in TEXTS)
    assert entry["tokens"] == n_tok == sum(n for _, n in entry["items"])
    assert entry["flops"] == 2 * work.dense_params(lm.model) * n_tok
    assert len(entry["items"]) == 2


def test_repeated_forward_work_is_not_unavoidable(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps({"kind": "features", "model": "m", "flops": 30.0, "tokens": 3,
                             "items": [["x", 1], ["y", 2]]}) + "\n")
    b.write_text(json.dumps({"kind": "features", "model": "m", "flops": 50.0, "tokens": 5,
                             "items": [["y", 2], ["z", 3]]}) + "\n"
                 + json.dumps({"kind": "train-sft", "model": "p", "flops": 7.0, "tokens": 0, "dtype": "bfloat16"}) + "\n")
    first, second = _bench().unavoidable([a, b], peak={"float32": 1e-9, "bfloat16": 7e-9})
    assert (first["unique"], first["repeated"]) == (30.0, 0.0)
    assert (second["unique"], second["repeated"]) == (30.0 + 7.0, 20.0)  # y again: 2 tokens x 10 FLOP
    assert second["total"] == 57.0
    assert second["bound_s"] == 30.0 + 1.0  # fp32 work at 1 FLOP/s, bf16 work at 7 FLOP/s
