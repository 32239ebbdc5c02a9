"""The chapters' setup cell (installs the course outside its environment) and Colab badges."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from w2s_helpers.core.paths import NOTEBOOKS, REPO_ROOT
from w2s_helpers.course import colab
from w2s_helpers.course.exercises import learner_copy

PUB = colab.Publication("someone/w2s-course", "main")


def chapter() -> dict:
    return json.loads((NOTEBOOKS / "02_conflicting_objectives.ipynb").read_text())


def test_committed_chapters_agree_with_the_setting():
    assert colab.write(check=True) == [], "run: python -m w2s_helpers colab, then exercises"


def test_setup_cell_comes_first_and_applying_twice_changes_nothing():
    nb = colab.apply(chapter(), PUB, "notebooks/02_conflicting_objectives.ipynb")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["id"] == colab.SETUP_ID and "parameters" in code[1]["metadata"].get("tags", [])
    assert nb["cells"][0]["id"] == colab.BADGE_ID
    link = "".join(nb["cells"][0]["source"])
    assert ("colab.research.google.com/github/someone/w2s-course/blob/main/"
            "notebooks/02_conflicting_objectives.ipynb") in link
    again = colab.apply(json.loads(json.dumps(nb)), PUB, "notebooks/02_conflicting_objectives.ipynb")
    assert again == nb


def test_no_repository_means_no_badge():
    nb = colab.apply(chapter(), colab.Publication(), "notebooks/02_conflicting_objectives.ipynb")
    assert all(c.get("id") != colab.BADGE_ID for c in nb["cells"])
    assert sum(c.get("id") == colab.SETUP_ID for c in nb["cells"]) == 1


def test_the_learner_copy_badge_opens_the_copy():
    nb = colab.apply(chapter(), PUB, "notebooks/02_conflicting_objectives.ipynb")
    text = "".join(learner_copy(nb)["cells"][0]["source"])
    assert "/blob/main/notebooks/exercises/02_conflicting_objectives.ipynb" in text
    assert colab.for_exercises(text) == text


def test_bad_repository_names_are_refused():
    for bad in ("https://github.com/a/b", "only-owner", "a/b/c", "a b/c"):
        with pytest.raises(ValueError, match="owner/name"):
            colab.Publication(bad)


def test_the_setting_round_trips(tmp_path):
    path = tmp_path / "pyproject.toml"
    shutil.copy(REPO_ROOT / "pyproject.toml", path)
    colab.write_setting(PUB, path)
    assert colab.read_setting(path) == PUB
    assert "[tool.pytest.ini_options]" in path.read_text()       # the rest of the file is kept
    (tmp_path / "other.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ValueError, match="tool.w2s-course"):
        colab.write_setting(PUB, tmp_path / "other.toml")


def run_setup_cell(pub, monkeypatch, installed: bool):
    """Execute the setup cell's source with the package shown as (not) installed; returns the
    commands it would have run (nothing is installed)."""
    calls = []

    def fake_run(cmd, **kw):
        calls.append((list(cmd), kw.get("cwd")))
        if cmd[:2] == ["git", "clone"]:                      # the clone: the course's two pin files
            home = Path(cmd[-1])
            home.mkdir()
            for name in ("requirements.txt", "requirements-models.txt"):
                shutil.copy(REPO_ROOT / name, home / name)
        return subprocess.CompletedProcess(cmd, 0)

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real(name, *a) if installed or name != "w2s_helpers" else None))
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(colab.setup_source(pub), "setup-cell", "exec"), {})
    return calls


def test_setup_cell_does_nothing_where_the_course_is_installed(monkeypatch):
    assert run_setup_cell(PUB, monkeypatch, installed=True) == []


def test_setup_cell_without_a_repository_says_what_to_do(monkeypatch):
    with pytest.raises(ModuleNotFoundError, match="make setup"):
        run_setup_cell(colab.Publication(), monkeypatch, installed=False)


def test_setup_cell_elsewhere_clones_installs_and_builds_the_data(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "W2S_DATA_DIR"}
    monkeypatch.setattr(os, "environ", env)                # the cell sets it; the test's copy goes away
    calls = [c for c, _ in run_setup_cell(PUB, monkeypatch, installed=False)]
    home = str(tmp_path / "w2s-deception-course")
    assert calls[0][:2] == ["git", "clone"] and "https://github.com/someone/w2s-course" in calls[0]
    pins = calls[1][calls[1].index("-q") + 1:]
    assert "trl==1.16.0" in pins and not any(p.startswith("torch") for p in pins)
    assert all(p and not p.startswith("#") and " " not in p for p in pins)
    assert calls[2][-4:] == ["-r", f"{home}/requirements-models.txt", "-e", home]
    assert calls[3][-3:] == ["build-data", "--out", f"{home}/data/hub"]
    assert sys.path[0] == home
    assert env["W2S_DATA_DIR"] == f"{home}/data/hub"
