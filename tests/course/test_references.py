"""Checked outputs (nbval): every tagged cell has a recorded reference, and the notebooks nbval runs
are the chapters' current cells with the ci parameters."""

import json

import pytest

from w2s_helpers.course import references


def test_every_checked_cell_has_a_reference_and_the_prepared_notebooks_are_current(tmp_path):
    written = references.prepare(tmp_path)
    assert written, "no chapter has checked outputs"
    refs = json.loads(references.REFERENCES.read_text())
    for path in written:
        prepared = json.loads(path.read_text())
        chapter = json.loads((references.NOTEBOOKS / path.name).read_text())
        sources = [c["source"] for c in chapter["cells"]]
        assert [c["source"] for c in prepared["cells"] if c.get("id") != "ci-parameters"] == sources
        params = [c for c in prepared["cells"] if c.get("id") == "ci-parameters"]
        assert len(params) == 1 and params[0]["source"] == ['PROFILE = "ci"']
        for cell in prepared["cells"]:
            if cell["cell_type"] != "code":
                continue
            if cell.get("id") in refs[path.name]:
                assert cell["outputs"] == refs[path.name][cell["id"]] and cell["execution_count"] == 1
            else:
                assert cell["outputs"] == []
    assert sum("PASS" in json.dumps(v) for v in refs.values()) >= 8        # every chapter's exercise checks


def test_recording_without_executed_chapters_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="run --profile ci"):
        references.record(tmp_path)
