"""Precision per machine: "auto" never picks a precision the CPU emulates; caching; overrides; cache keys."""

import json
import os

import pytest
import torch

from w2s_helpers.core import features, models, precision
from w2s_helpers.core.features import FeatureSpec

FAST = {"float32": 110.0, "bfloat16": 400.0}     # a CPU with AVX-512 BF16 / AMX


EMULATED = {"float32": 110.0, "bfloat16": 0.6}   # AVX2 only: bf16 emulated (measured 0.3-0.9 GFLOP/s)


def stub_machine(monkeypatch, flags, gflops):
    """Make this CPU report ``flags`` and measure ``gflops``; return the list of measured dtypes."""
    measured = []
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: tuple(flags))

    def measure(dtype, **_):
        measured.append(dtype)
        return gflops[dtype]

    monkeypatch.setattr(precision, "measure_matmul", measure)
    monkeypatch.delenv(precision.PRECISION_ENV, raising=False)
    return measured


@pytest.mark.parametrize("flags, gflops, want", [
    ((), FAST, "float32"),                  # no native flag: never bf16, even if a timing looked fast
    ((), EMULATED, "float32"),
    (("avx512_bf16",), EMULATED, "float32"),  # the flag claims bf16, the measurement says emulated
    (("avx512_bf16",), {"float32": 110.0, "bfloat16": 120.0}, "float32"),  # not faster enough
    (("amx_bf16",), FAST, "bfloat16"),      # native and measured faster: the only way to bf16
])
def test_auto_picks_bf16_only_where_native_and_faster(monkeypatch, flags, gflops, want):
    stub_machine(monkeypatch, flags, gflops)
    got = precision.choose("cpu", refresh=True)
    assert got.dtype == want
    assert precision.resolve("auto", "cpu") == want
    assert got.reason  # printed by make check and chapter 0


def test_no_flag_means_no_measurement(monkeypatch):
    measured = stub_machine(monkeypatch, (), FAST)
    assert precision.choose("cpu", refresh=True).dtype == "float32"
    assert measured == []  # nothing to learn from timing an emulated path


def test_decision_is_cached_per_machine(monkeypatch, isolated_cache):
    measured = stub_machine(monkeypatch, ("avx512_bf16",), FAST)
    assert precision.choose("cpu").dtype == "bfloat16"
    assert sorted(measured) == ["bfloat16", "float32"]
    (entry,) = (isolated_cache / "machine").glob("precision-*.json")
    assert json.loads(entry.read_text())["dtype"] == "bfloat16"
    measured.clear()
    assert precision.choose("cpu").dtype == "bfloat16" and measured == []  # read back, not measured
    # another machine (another CPU, or the same one with torch's kernels capped) has another key
    monkeypatch.setattr(precision, "cpu_name", lambda: "Some Other CPU")
    monkeypatch.setattr(precision, "measure_matmul", lambda dtype, **_: EMULATED[dtype])
    assert precision.choose("cpu").dtype == "float32"
    assert len(list((isolated_cache / "machine").glob("precision-*.json"))) == 2
    key = precision.machine_key()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", os.environ.get("ONEDNN_MAX_CPU_ISA", "") + "-other")
    assert precision.machine_key() != key  # a kernel-capping variable is part of the key


def test_corrupted_decision_is_made_again(monkeypatch, isolated_cache):
    stub_machine(monkeypatch, ("avx512_bf16",), FAST)
    precision.choose("cpu")
    (entry,) = (isolated_cache / "machine").glob("precision-*.json")
    entry.write_text("{not json")
    assert precision.choose("cpu").dtype == "bfloat16"
    assert json.loads(entry.read_text())["dtype"] == "bfloat16"


def test_explicit_settings_and_the_environment_override(monkeypatch):
    stub_machine(monkeypatch, ("avx512_bf16",), FAST)
    assert precision.resolve("float32", "cpu") == "float32"
    assert precision.resolve("bf16", "cpu") == "bfloat16"
    monkeypatch.setenv(precision.PRECISION_ENV, "float32")
    choice = precision.explain("auto", "cpu")
    assert choice.dtype == "float32" and precision.PRECISION_ENV in choice.reason
    assert precision.resolve("bfloat16", "cpu") == "bfloat16"  # explicit beats the environment
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        precision.resolve("fp8", "cpu")


def test_real_measurement_runs_and_is_positive():
    assert precision.measure_matmul("float32", m=64, k=64, n=64, budget_s=0.01) > 0


@pytest.fixture
def tiny_rung(tiny_hub_folders):
    return models.Rung("tiny-gpt2", "hub", "gpt2", 0.1, causal=True, hub_id=str(tiny_hub_folders["gpt2"]))


TEXTS = ["Human: hi. Assistant: no.", "Human: how do I bake bread? Assistant: knead, proof and bake it."]


def test_fingerprint_names_the_dtype(tiny_rung):
    a = models.load(tiny_rung, device="cpu", dtype="float32")
    b = models.load(tiny_rung, device="cpu", dtype="bfloat16")
    assert a.fingerprint.endswith(":float32") and b.fingerprint.endswith(":bfloat16")


def test_switching_precision_misses_the_feature_cache(tiny_rung, monkeypatch, isolated_cache):
    lm32 = models.load(tiny_rung, device="cpu", dtype="float32")
    lm16 = models.load(tiny_rung, device="cpu", dtype="bfloat16")
    calls = []
    real = features.compute
    monkeypatch.setattr(features, "compute", lambda *a, **k: calls.append(a[3].dtype) or real(*a, **k))
    x32 = features.extract(lm32, TEXTS, FeatureSpec(max_length=32, dtype="float32"), progress=False)
    x16 = features.extract(lm16, TEXTS, FeatureSpec(max_length=32, dtype="bfloat16"), progress=False)
    auto = features.extract(lm32, TEXTS, FeatureSpec(max_length=32, dtype="bfloat16"), progress=False)  # autocast
    assert calls == ["float32", "bfloat16", "bfloat16"]  # three entries, none read for another
    assert len(list((isolated_cache / "features").glob("*.safetensors"))) == 3
    assert not torch.equal(x32, x16) and not torch.equal(x32, auto)
    # "auto" resolves before the key is taken: it hits the entry of the dtype it resolves to
    stub_machine(monkeypatch, (), EMULATED)
    assert torch.equal(features.extract(lm32, TEXTS, FeatureSpec(max_length=32, dtype="auto"), progress=False), x32)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="resolve the spec first"):
        features.cache_key(lm32.fingerprint, TEXTS, FeatureSpec(dtype="auto"))


def test_models_load_auto_follows_the_decision(tiny_rung, monkeypatch):
    stub_machine(monkeypatch, (), FAST)
    precision.choose("cpu", refresh=True)
    assert models.load(tiny_rung, device="cpu").model.dtype == torch.float32
    stub_machine(monkeypatch, ("avx512_bf16",), FAST)
    precision.choose("cpu", refresh=True)
    assert models.load(tiny_rung, device="cpu").model.dtype == torch.bfloat16


def test_profiles_default_to_auto():
    from w2s_helpers.core import profiles

    assert all(p.features.dtype == "auto" for p in profiles.PROFILES.values())


def test_saved_runs_in_two_precisions_are_two_runs(isolated_cache):
    import numpy as np

    from w2s_helpers.core import results

    cfg = dict(role="strong", model="m", profile="t", data_hash="d")
    results.save_run(results.RunConfig(precision="float32", **cfg), np.array([1.0, -1.0]), np.array([True, False]))
    assert results.load_run(results.RunConfig(precision="bfloat16", **cfg)) is None
    assert len(results.load_runs(precision="float32")) == 1 and len(results.load_runs(precision="bfloat16")) == 0
