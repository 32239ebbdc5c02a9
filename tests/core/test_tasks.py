"""The course on another data folder: DATA_DIR, the size check and the documented way to draw less."""

import json
import os

import pytest

from tests.conftest import hh
from w2s_helpers.core import data, profiles, tasks


def folder(root, n_gt=40, n_w2s=40, n_test=25, n_help=10):
    """A data folder in the HH layout with the given numbers of single-turn pairs."""
    for name, n in (("harmless_gt", n_gt), ("harmless_w2s", n_w2s), ("harmless_test", n_test), ("helpful", n_help)):
        path = root / data.SPLITS[name][0]
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"chosen": hh(f"{name} question {i}?", "A careful answer."),
                             "rejected": hh(f"{name} question {i}?", "A careless one.")}) for i in range(n)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def restore_data_env(monkeypatch):
    """tasks.use sets $W2S_DATA_DIR itself: register it with monkeypatch so each test leaves it as it was."""
    monkeypatch.setenv(data.DATA_ENV, os.environ.get(data.DATA_ENV, ""))
    monkeypatch.delenv(data.TASK_DATA_ENV, raising=False)


def test_a_data_folder_is_used_and_inherited_by_later_chapters(tmp_path):
    root = folder(tmp_path / "mine")
    p = profiles.resize(profiles.get("ci"), n_train=30, n_test=20)
    assert tasks.use("hh", p, root) == root.resolve()
    assert os.environ[data.DATA_ENV] == str(root.resolve())          # chapters started from here read it too
    assert len(data.load_split("harmless_test")) == 25
    assert tasks.use("hh", p) == root.resolve()                      # a started chapter passes no DATA_DIR


def test_a_folder_too_small_is_a_clear_error_with_the_way_out(tmp_path, monkeypatch):
    root = folder(tmp_path / "small", n_test=25)
    with pytest.raises(tasks.DataSizeError) as e:
        tasks.use("hh", profiles.get("ci"), root)
    text = str(e.value)
    assert "harmless_test.jsonl holds 25 single-turn pairs, profile 'ci' draws 200" in text
    assert "harmless_train_gt.jsonl holds 40" in text and "W2S_SIZES='n_train=40,n_test=25'" in text
    monkeypatch.setenv(profiles.SIZES_ENV, "n_train=40,n_test=25")
    P = profiles.get("ci")
    assert (P.n_train, P.n_test, P.po.n_train, P.po.n_test) == (40, 25, 40, 25)
    assert P.weak_n == 30 and tasks.use("hh", P, root) == root.resolve()


def test_sizes_and_tasks_are_checked():
    assert profiles.parse_sizes("n_train=150, n_test=120") == {"n_train": 150, "n_test": 120}
    for bad in ("n_train=0", "n_tour=5", "n_test", "n_test=abc"):
        with pytest.raises(ValueError, match="W2S_SIZES"):
            profiles.parse_sizes(bad)
    with pytest.raises(ValueError):
        profiles.resize(profiles.get("ci"), n_tour=3)
    small = profiles.resize(profiles.get("laptop"), n_train=50)
    assert small.weak_n == 40 and small.po.n_train == 50                # weak_n fits a seed's 80% share
    with pytest.raises(ValueError, match="replaces the HH splits"):
        tasks.use("arithmetic", profiles.get("ci"), "somewhere")
