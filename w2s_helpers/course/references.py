"""Reference outputs CI compares with nbval: the outputs a chapter teaches that must not change silently.

A chapter's cell tagged ``nbval-check-output`` has its output recorded once, at the ``ci`` profile,
in ``tests/nbval/references.json`` ({chapter: {cell id: outputs}}). In ``make test`` every such
chapter is rebuilt from its **current** cells with the ``ci`` parameters and the recorded outputs
in its tagged cells (``--prepare``), and ``pytest --nbval-lax`` executes it and compares those
cells only, through ``tests/nbval/sanitize.cfg``. Only outputs that are the same on every machine
are tagged: the exercise checks' PASS lines and counts that follow from the data alone, never a
trained number (a bf16 machine and an fp32 one train differently).

    python -m w2s_helpers run --profile ci --out build     # the executed ci chapters
    python -m w2s_helpers references                       # record their tagged outputs
    python -m w2s_helpers references --prepare build/nbval # what nbval executes (make test does it)
"""

from __future__ import annotations

import json
from pathlib import Path

from w2s_helpers.core.paths import NOTEBOOKS, REPO_ROOT
from w2s_helpers.core.store import atomic_write_bytes

REFERENCES = REPO_ROOT / "tests" / "nbval" / "references.json"
CHECK_TAG = "nbval-check-output"
PROFILE = "ci"


def _chapters() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))


def tagged(nb: dict) -> list[str]:
    """Ids of the cells whose output CI compares."""
    return [c["id"] for c in nb["cells"] if CHECK_TAG in c.get("metadata", {}).get("tags", [])]


def _clean(outputs: list[dict], paths: list[tuple[str, str]]) -> list[dict]:
    from w2s_helpers.course.published import scrub

    out = []
    for o in outputs:
        o = json.loads(scrub(json.dumps(o), paths))
        if o.get("output_type") == "execute_result":
            o["execution_count"] = None
        if "metadata" in o:
            o["metadata"] = {}
        out.append(o)
    return out


def record(build: str | Path = "build") -> dict[str, dict[str, list]]:
    """The tagged outputs of every chapter's executed ``ci`` copy in ``build/ci/``, written to
    :data:`REFERENCES`. Raises ``FileNotFoundError`` naming a missing executed copy or cell."""
    from w2s_helpers.course.published import machine_paths

    src = Path(build) / PROFILE
    paths = machine_paths()
    refs: dict[str, dict[str, list]] = {}
    for chapter in _chapters():
        ids = tagged(json.loads(chapter.read_text()))
        if not ids:
            continue
        executed = src / chapter.name
        if not executed.exists():
            raise FileNotFoundError(f"{chapter.name} has checked outputs but no executed copy in {PROFILE}/: run "
                                    f"`python -m w2s_helpers run --profile {PROFILE} --out {build}` first")
        cells = {c.get("id"): c for c in json.loads(executed.read_text())["cells"]}
        missing = [i for i in ids if i not in cells]
        if missing:
            raise FileNotFoundError(f"{chapter.name}: cells {missing} are not in the executed copy (stale? run it again)")
        refs[chapter.name] = {i: _clean(cells[i].get("outputs", []), paths) for i in ids}
    REFERENCES.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(REFERENCES, (json.dumps(refs, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode())
    return refs


def prepare(out_dir: str | Path) -> list[Path]:
    """For every chapter with checked outputs: its current cells, a cell with the ``ci`` parameters
    after its parameters cell, the recorded outputs in its tagged cells and none elsewhere; written
    to ``out_dir``. Raises ``ValueError`` when a tagged cell has no recorded output."""
    refs = json.loads(REFERENCES.read_text()) if REFERENCES.exists() else {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for chapter in _chapters():
        nb = json.loads(chapter.read_text())
        ids = tagged(nb)
        if not ids:
            continue
        have = refs.get(chapter.name, {})
        missing = [i for i in ids if i not in have]
        if missing:
            raise ValueError(f"{chapter.name}: no reference output for cells {missing}; record them with "
                             "`python -m w2s_helpers references` after a ci run")
        cells = []
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                checked = cell.get("id") in ids
                cell["outputs"] = have.get(cell.get("id"), []) if checked else []
                cell["execution_count"] = 1 if checked else None      # nbval skips a cell it thinks never ran
            cells.append(cell)
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                cells.append({"cell_type": "code", "id": "ci-parameters", "execution_count": None, "outputs": [],
                              "metadata": {"tags": ["injected-parameters"]}, "source": [f'PROFILE = "{PROFILE}"']})
        nb["cells"] = cells
        path = out_dir / chapter.name
        atomic_write_bytes(path, (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode())
        written.append(path)
    return written
