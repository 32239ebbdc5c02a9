"""Preference pairs: transcript parsing, every bad-input case, the paper's splits and subsets."""

import gzip
import json

import pytest
from conftest import hh

from w2s_helpers.core import data
from w2s_helpers.core.data import DataFormatError


def rec(prompt="How do I bake bread?", chosen="Knead, proof, bake.", rejected="No idea."):
    return {"chosen": hh(prompt, chosen), "rejected": hh(prompt, rejected)}


def test_split_transcript_single_turn():
    assert data.split_transcript(hh("hi there", "hello!")) == ("hi there", "hello!")


def test_split_transcript_rejects_multi_turn():
    text = hh("a", "b") + hh("c", "d")
    assert data.split_transcript(text, "strict") is None
    assert data.split_transcript(text, "first") == ("a", "b" + hh("c", "d"))
    assert data.split_transcript(hh("a", "b")[2:], "first") is None  # must start with the marker
    assert data.split_transcript("\n\nHuman: x\n\nHuman: y\n\nAssistant: z", "first") is None


def test_first_policy_keeps_runon_response():
    text = hh("a", "b  Human: c") + "\n\nAssistant: d"
    assert data.split_transcript(text, "strict") is None
    assert data.split_transcript(text, "first") == ("a", "b  Human: c\n\nAssistant: d")


def test_transcript_round_trip():
    p = data.PreferencePair("Is it safe?", "Yes.", "No.")
    assert data.split_transcript(p.transcript("chosen")) == ("Is it safe?", "Yes.")


def test_load_pairs_reads_plain_and_gz(tmp_path, write_jsonl):
    path = write_jsonl([rec(), rec(prompt="Other?"), ""])  # blank line is fine
    pairs = data.load_pairs(path)
    assert [p.prompt for p in pairs] == ["How do I bake bread?", "Other?"]
    assert pairs[0].source == "pairs.jsonl:1"
    gz = tmp_path / "pairs.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(json.dumps(rec()) + "\n")
    assert data.load_pairs(gz)[0].chosen == "Knead, proof, bake."


def test_load_pairs_drops_multi_turn_and_mismatched_prompts(write_jsonl):
    multi = {"chosen": hh("a", "b") + hh("c", "d"), "rejected": hh("a", "b") + hh("c", "e")}
    mismatch = {"chosen": hh("p1", "x"), "rejected": hh("p2", "y")}
    pairs = data.load_pairs(write_jsonl([multi, rec(), mismatch]))
    assert len(pairs) == 1 and pairs[0].source.endswith(":2")


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"chosen": hh("a", "b")}), "missing field 'rejected'"),
        (json.dumps({"rejected": hh("a", "b")}), "missing field 'chosen'"),
        (json.dumps({"chosen": 3, "rejected": hh("a", "b")}), "field 'chosen' must be a string"),
        (json.dumps({"chosen": hh("a", "b"), "rejected": None}), "field 'rejected' must be a string"),
    ],
)
def test_bad_line_names_file_and_line(write_jsonl, line, message):
    path = write_jsonl([rec(), rec(), line, rec()])
    with pytest.raises(DataFormatError) as e:
        data.load_pairs(path)
    assert f"{path}:3" in str(e.value) and message in str(e.value)


def test_empty_file(write_jsonl):
    with pytest.raises(DataFormatError, match="empty file"):
        data.load_pairs(write_jsonl(["", "  "]))


def test_no_single_turn_pairs_left(write_jsonl):
    multi = {"chosen": hh("a", "b") + hh("c", "d"), "rejected": hh("a", "b") + hh("c", "e")}
    with pytest.raises(DataFormatError, match="no single-turn pairs left"):
        data.load_pairs(write_jsonl([multi]))


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data file"):
        data.load_pairs(tmp_path / "nope.jsonl")


def test_garbled_gzip_is_a_format_error(tmp_path):
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(DataFormatError, match="bad.jsonl.gz"):
        data.load_pairs(path)


def test_subset_is_seeded_and_bounded():
    pairs = [data.PreferencePair(str(i), "c", "r") for i in range(50)]
    a, b, c = data.subset(pairs, 10, 0), data.subset(pairs, 10, 0), data.subset(pairs, 10, 1)
    assert a == b and a != c and len(set(p.prompt for p in a)) == 10
    with pytest.raises(ValueError, match="only 50 available"):
        data.subset(pairs, 51, 0)


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.resolve_data_dir() == tmp_path.resolve()
    assert data.resolve_data_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="W2S_DATA_DIR"):
        data.resolve_data_dir()


EXPECTED = {"harmless_gt": 4000, "harmless_w2s": 4000, "harmless_test": 4000, "helpful": 696}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_splits_load_whole(name):
    pairs = data.load_split(name)
    assert len(pairs) == EXPECTED[name]
    assert all(p.prompt and isinstance(p.chosen, str) for p in pairs)


def test_real_files_match_their_checksums(tmp_path):
    assert set(data.verify_checksums().values()) == {"ok"}
    (tmp_path / "hh-single-turn").mkdir()
    (tmp_path / "hh-single-turn" / "harmless_test.jsonl").write_text("{}\n")
    status = data.verify_checksums(tmp_path)
    assert status["hh-single-turn/harmless_test.jsonl"] == "differs"
    assert status["hh-rlhf/helpful-base-test.jsonl.gz"] == "absent"


def test_real_splits_subset_is_deterministic():
    a = data.load_split("harmless_test", n=100, seed=3)
    b = data.load_split("harmless_test", n=100, seed=3)
    assert data.pairs_hash(a) == data.pairs_hash(b)
    assert data.pairs_hash(a) != data.pairs_hash(data.load_split("harmless_test", n=100, seed=4))
