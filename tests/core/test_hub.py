"""The hub path: the paper's splits built from a local stand-in, and fast failure offline."""

import gzip
import time

import pytest
from conftest import hh

from w2s_helpers.core import data, hub


def rec(prompt="How do I bake bread?", chosen="Knead, proof, bake.", rejected="No idea."):
    return {"chosen": hh(prompt, chosen), "rejected": hh(prompt, rejected)}


def test_make_paper_splits_disjoint_and_deduplicated():
    harmless = [rec(prompt=f"q{i % 40}", chosen=f"safe {i}", rejected=f"bad {i}") for i in range(80)]
    harmless.append({"chosen": hh("x", "y") + hh("z", "w"), "rejected": hh("x", "y") + hh("z", "v")})
    helpful = [rec(prompt=f"h{i}") for i in range(10)] + [rec(prompt="q1")]  # q1 is taken
    splits = hub.make_paper_splits(harmless, helpful, n_per_split=12, n_helpful=10, seed=0)
    prompts = {k: {data.split_transcript(r["chosen"])[0] for r in v} for k, v in splits.items()}
    assert [len(v) for v in splits.values()] == [12, 12, 12, 10]
    assert all(len(p) == len(splits[k]) for k, p in prompts.items())  # no repeated prompt
    names = list(prompts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not prompts[a] & prompts[b], (a, b)
    with pytest.raises(ValueError, match="need 120"):
        hub.make_paper_splits(harmless, helpful, n_per_split=40, n_helpful=1)


def test_build_hub_splits_from_local_standin(tmp_path, monkeypatch):
    """The hub code path, run on a local folder laid out like Anthropic/hh-rlhf
    (real HH rows: the first 1500 stand in for harmless-base, the rest for helpful-base)."""
    raw = data.resolve_data_dir() / data.HELPFUL_FALLBACK[0]
    lines = gzip.open(raw, "rt", encoding="utf-8").read().splitlines(keepends=True)
    for sub, part in (("harmless-base", lines[:1500]), ("helpful-base", lines[1500:])):
        (tmp_path / "hub" / sub).mkdir(parents=True)
        with gzip.open(tmp_path / "hub" / sub / "train.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(part)
    out = hub.build_hub_splits(tmp_path / "out", source=str(tmp_path / "hub"), n_per_split=100, n_helpful=50)
    monkeypatch.setenv(data.DATA_ENV, str(out))
    sizes = {name: len(data.load_split(name)) for name in data.SPLITS}
    assert sizes == {"harmless_gt": 100, "harmless_w2s": 100, "harmless_test": 100, "helpful": 50}
    again = hub.build_hub_splits(tmp_path / "out", source=str(tmp_path / "nowhere"))  # cached: no load
    assert again == out


def test_hub_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(hub.HubUnavailableError, match="W2S_DATA_DIR"):
        hub.build_hub_splits(tmp_path / "out")
    assert time.perf_counter() - t0 < 10


def test_hub_fails_fast_without_network(tmp_path, monkeypatch):
    """No offline flag: the connection probe itself must give up within its timeout."""
    for v in hub.HF_OFFLINE_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # a name that never resolves
    t0 = time.perf_counter()
    with pytest.raises(hub.HubUnavailableError, match="no connection"):
        hub.build_hub_splits(tmp_path / "out")
    assert time.perf_counter() - t0 < 10


def test_hub_rungs_prefetch_fails_fast_offline_and_downloads_when_online(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from w2s_helpers.core import models
    from w2s_helpers.course import cli

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(hub.HubUnavailableError, match="gpt2"):
        models.prefetch_hub("gpt2")
    assert cli.main(["fetch", "--profile", "paper-opt"]) == 1          # the OPT variant: hub rungs only
    assert "Cannot reach the Hugging Face hub" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 20
    with pytest.raises(ValueError, match="not a hub rung"):
        models.prefetch_hub("smollm2-135m")
    local = models.Rung("stand-in", "hub", "gpt2", 1, causal=True, hub_id=str(tmp_path))
    assert models.prefetch_hub(local) == str(tmp_path)                  # a local folder: nothing to fetch
    calls = []
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)

    class Api:                                     # OPT's repositories: .bin shards only
        def list_repo_files(self, repo_id, revision=None):
            return ["config.json", "pytorch_model.bin", "vocab.json", "merges.txt"]

    def download(repo_id, allow_patterns, revision=None):
        calls.append((repo_id, allow_patterns, revision))
        (tmp_path / "pytorch_model.bin").write_bytes(b"")
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    assert models.prefetch_hub("opt-125m") == str(tmp_path)
    assert calls == [("facebook/opt-125m", models.HUB_FILES + ["pytorch_model*.bin", "*.bin.index.json"], None)]
    import dataclasses

    models.prefetch_hub(dataclasses.replace(models.get_rung("opt-125m"), revision="0123abc"))
    assert calls[-1][2] == "0123abc"                                    # a pinned revision is what downloads
    assert models.hub_weight_patterns(["model.safetensors", "pytorch_model.bin"]) == ["*.safetensors"]
    with pytest.raises(ValueError, match="no weight file"):
        models.hub_weight_patterns(["config.json"])
