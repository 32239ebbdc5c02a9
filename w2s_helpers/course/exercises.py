"""Learner copies of the chapters: every solution cell becomes a stub to fill in.

The chapters in ``notebooks/`` are the solutions. A cell tagged ``solution`` holds one or more
functions the learner is asked to write; :func:`learner_copy` keeps each function's signature and
docstring, replaces its body with ``raise NotImplementedError(...)`` naming the exercise, tags the
cell ``exercise`` instead and clears every output. The check cell after it then fails until the
learner's function matches the reference.

    python -m w2s_helpers exercises            # (re)write notebooks/exercises/
    python -m w2s_helpers exercises --check    # exit 1 if a committed copy is out of date

The copies are committed; a test fails when one is out of date with its chapter.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

from w2s_helpers.core.paths import NOTEBOOKS
from w2s_helpers.core.store import atomic_write_bytes
from w2s_helpers.course import colab

EXERCISES = NOTEBOOKS / "exercises"
SOLUTION_TAG, EXERCISE_TAG = "solution", "exercise"
_TITLE = re.compile(r"\*\*Exercise (\d+[a-z]?\.\d+)\*\*")


def stub_source(source: str, title: str = "this exercise") -> str:
    """``source`` (a solution cell) with the body of every top-level function replaced by a
    ``raise NotImplementedError``; signatures, decorators, docstrings and the code outside the
    functions are kept. Raises ``ValueError`` if the cell defines no function."""
    tree = ast.parse(source)
    lines = source.splitlines()
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not functions:
        raise ValueError("a solution cell must define at least one function to stub")
    out, pos = [], 0                       # pos: the next source line (0-based) not yet copied
    for fn in functions:
        cut = fn.body[1:] if ast.get_docstring(fn, clean=False) is not None else fn.body
        if not cut:                        # a docstring alone: nothing to cut
            continue
        out += lines[pos:cut[0].lineno - 1]
        indent = " " * cut[0].col_offset
        out.append(f'{indent}raise NotImplementedError("{title}: write this function, then run the check below")')
        pos = fn.end_lineno
    out += lines[pos:]
    return "\n".join(out)


def _title(cells: list[dict], index: int) -> str:
    """The nearest "**Exercise N.M**" above cell ``index``, or a generic name."""
    for cell in reversed(cells[:index]):
        if cell["cell_type"] == "markdown":
            found = _TITLE.findall("".join(cell["source"]))
            if found:
                return f"Exercise {found[-1]}"
    return "This exercise"


def learner_copy(notebook: dict) -> dict:
    """A copy of a chapter (nbformat JSON as a dict) with its solution cells stubbed, tagged
    ``exercise``, every output and execution count cleared, and its Markdown links out of
    ``notebooks/`` (``../README.md``, ``../results/...``) pointing one folder further up; its Colab
    badge opens the copy."""
    nb = copy.deepcopy(notebook)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":   # the copy lives one folder down: links above notebooks/ go one more up
            text = colab.for_exercises("".join(cell["source"]).replace("](../", "](../../"))
            cell["source"] = text.splitlines(keepends=True)
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_TAG in tags:
            text = stub_source("".join(cell["source"]), _title(nb["cells"], i))
            cell["source"] = text.splitlines(keepends=True)
            cell["metadata"]["tags"] = [EXERCISE_TAG if t == SOLUTION_TAG else t for t in tags]
    return nb


def _dump(nb: dict) -> bytes:
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()


def chapters() -> list[Path]:
    """The chapters that hold at least one solution cell."""
    out = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")):
        nb = json.loads(path.read_text())
        if any(SOLUTION_TAG in c.get("metadata", {}).get("tags", []) for c in nb["cells"]):
            out.append(path)
    return out


def write(out: Path = EXERCISES, check: bool = False) -> list[Path]:
    """Write the learner copy of every chapter with exercises into ``out`` (atomically). With
    ``check``, write nothing and return the copies that are missing or differ from what would be
    written (an empty list: all up to date)."""
    stale = []
    for path in chapters():
        target = out / path.name
        want = _dump(learner_copy(json.loads(path.read_text())))
        if target.exists() and target.read_bytes() == want:
            continue
        stale.append(target)
        if not check:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, want)
    return stale
