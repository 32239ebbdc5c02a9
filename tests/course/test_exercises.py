"""Learner copies: every stub fails its chapter's check, every solution passes it, and the
committed copies are the ones the generator writes today."""

import ast
import json
import re

import pytest

from w2s_helpers.course import exercises


def test_stub_keeps_signatures_docstrings_and_other_code():
    src = '''import math

SCALE = 2.0


@staticmethod
def f(x: float, y=1) -> float:
    """Doc of f."""
    z = x * SCALE
    return math.sqrt(z) + y


def g(a):
    return a + 1
'''
    out = exercises.stub_source(src, "Exercise 9.1")
    tree = ast.parse(out)                                        # still valid Python
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert names == ["f", "g"]
    assert "import math" in out and "SCALE = 2.0" in out and "@staticmethod" in out
    assert '"""Doc of f."""' in out and "def f(x: float, y=1) -> float:" in out
    assert "sqrt" not in out and "a + 1" not in out
    assert out.count('raise NotImplementedError("Exercise 9.1') == 2
    ns = {}
    exec(out.replace("@staticmethod\n", ""), ns)
    with pytest.raises(NotImplementedError, match="Exercise 9.1"):
        ns["g"](1)


def test_a_cell_without_a_function_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one function"):
        exercises.stub_source("x = 1\n")


def _imports(cells) -> str:
    """Every import statement of the given code cells (so a check cell can run on its own)."""
    lines = []
    for c in cells:
        if c["cell_type"] == "code":
            src = "".join(c["source"])
            for node in ast.parse(src).body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    lines.append(ast.get_source_segment(src, node))
    return "\n".join(lines)


CASES = [(path, i) for path in exercises.chapters()
         for i, c in enumerate(json.loads(path.read_text())["cells"])
         if exercises.SOLUTION_TAG in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("path,index", CASES, ids=[f"{p.stem}[{i}]" for p, i in CASES])
def test_the_solution_passes_its_check_and_the_stub_fails_it(path, index, capsys):
    cells = json.loads(path.read_text())["cells"]
    text = lambda i: "".join(cells[i]["source"])

    def before():
        """The chapter's imports and its earlier exercises (solved, checked): what the check may use."""
        ns = {}
        exec(_imports(cells[:index]), ns)
        for p, i in CASES:
            if p == path and i < index:
                exec(text(i), ns)
                exec(text(i + 1), ns)
        return ns

    ns = before()
    exec(text(index), ns)
    exec(text(index + 1), ns)
    assert capsys.readouterr().out.count("PASS") >= 1
    ns = before()
    exec(exercises.stub_source(text(index)), ns)
    with pytest.raises((NotImplementedError, AssertionError)):
        exec(text(index + 1), ns)


def test_every_chapter_with_exercises_has_one_and_the_copies_are_up_to_date():
    assert len(CASES) >= 8
    stale = exercises.write(check=True)
    assert not stale, f"out of date: {[p.name for p in stale]}; run: python -m w2s_helpers exercises"


def test_a_learner_copy_has_no_solution_and_no_output(tmp_path):
    path = exercises.chapters()[0]
    nb = exercises.learner_copy(json.loads(path.read_text()))
    tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
    assert exercises.SOLUTION_TAG not in tags and exercises.EXERCISE_TAG in tags
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    written = exercises.write(out=tmp_path)
    assert {p.name for p in written} == {p.name for p in exercises.chapters()}
    assert exercises.write(out=tmp_path, check=True) == []       # a second run finds nothing to do


def test_a_learner_copys_links_out_of_notebooks_still_resolve():
    from w2s_helpers.core.paths import NOTEBOOKS
    from w2s_helpers.course.exercises import EXERCISES, learner_copy

    for chapter in sorted(NOTEBOOKS.glob("0*_*.ipynb")):
        copy = learner_copy(json.loads(chapter.read_text()))
        for cell in copy["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for target in re.findall(r"\]\((\.\./[^)#\s]+)", "".join(cell["source"])):
                assert (EXERCISES / target).resolve().exists(), (chapter.name, target)
