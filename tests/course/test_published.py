"""Published results: outputs kept, example browsers cleared, machine paths scrubbed, failures refused."""

import json
import re

import pytest

from w2s_helpers.core.paths import REPO_ROOT
from w2s_helpers.course import published


def _executed(path_in_output: str) -> dict:
    code = lambda src, outputs, tags=(): {"cell_type": "code", "id": src[:6], "execution_count": 3,
                                           "metadata": {"tags": list(tags), "papermill": {"duration": 1.2}},
                                           "source": [src], "outputs": outputs}
    stream = lambda text: {"output_type": "stream", "name": "stdout", "text": [text]}
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"papermill": {"parameters": {"OUT_DIR": path_in_output}},
                         "w2s_run": {"machine": "a test CPU, 2 cores, float32", "profile": "ci", "finished": "2026-12-02"}},
            "cells": [code("PROFILE = 'ci'", [], ["parameters"]),
                      code("print(x)", [stream(f"saved to {path_in_output}/claims.csv\n"),
                                        {"output_type": "execute_result", "execution_count": 3, "metadata": {},
                                         "data": {"text/plain": ["0.42"]}}]),
                      code("PAGE = 0", [stream("a raw pair: how do I ...\n")], [published.BROWSER_TAG])]}


def test_a_published_copy_keeps_outputs_clears_browsers_and_scrubs_paths():
    where = str(REPO_ROOT / "build" / "laptop")
    nb = published.publish(_executed(where), "laptop", "a test machine, today")
    text = json.dumps(nb)
    assert str(REPO_ROOT) not in text and "./build/laptop/claims.csv" in text
    assert nb["cells"][0]["id"] == "published-banner" and "MIT" in "".join(nb["cells"][0]["source"])
    kept = nb["cells"][2]["outputs"]
    assert kept[1]["data"]["text/plain"] == ["0.42"] and kept[1]["execution_count"] == 2
    assert "papermill" not in nb["cells"][2]["metadata"] and nb["cells"][2]["execution_count"] == 2
    assert [c.get("execution_count") for c in nb["cells"]] == [None, 1, 2, 3]   # numbered in order
    browser = nb["cells"][3]["outputs"]
    assert len(browser) == 1 and "raw pair" not in json.dumps(browser) and "cleared" in json.dumps(browser)
    again = published.publish(nb, "laptop", "a test machine, today")          # idempotent: one banner
    assert [c["id"] for c in again["cells"]].count("published-banner") == 1


def test_a_failed_chapter_is_not_published():
    nb = _executed("x")
    nb["cells"][1]["outputs"].append({"output_type": "error", "ename": "ValueError", "evalue": "", "traceback": []})
    with pytest.raises(ValueError, match="cell 1 failed"):
        published.publish(nb, "ci", "here")


def test_write_needs_executed_chapters(tmp_path):
    with pytest.raises(FileNotFoundError, match="make course PROFILE=nowhere"):
        published.write("nowhere", tmp_path)


def test_committed_results_carry_no_machine_path_and_no_browser_output():
    for path in sorted(published.RESULTS.glob("*/*.ipynb")):
        text = path.read_text()
        assert str(REPO_ROOT) not in text and not re.search(r"(?<![\w.<~])/(root|home|work|tmp|Users|mnt)/", text), \
            path.name
        nb = json.loads(text)
        assert nb["cells"][0]["id"] == "published-banner", path.name
        for cell in nb["cells"]:
            if published.BROWSER_TAG in cell.get("metadata", {}).get("tags", []):
                assert json.dumps(cell["outputs"]).count("cleared") == 1, path.name


def test_figures_shrink_and_stay_pictures():
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots()
    ax.plot(range(10), [x * x for x in range(10)])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode()
    small = published.shrink_png(b64)
    image = Image.open(io.BytesIO(base64.b64decode(small)))
    assert image.size == Image.open(buf).size and image.mode == "P" and len(small) < len(b64)
    assert published.shrink_png(small) == small


def test_where_it_ran_comes_from_the_runners_stamp(tmp_path):
    nb = _executed("x")
    assert published.ran_on(nb) == "a test CPU, 2 cores, float32, 2026-12-02"
    del nb["metadata"]["w2s_run"]
    with pytest.raises(ValueError, match="python -m w2s_helpers run"):
        published.ran_on(nb)
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "00_x.ipynb").write_text(json.dumps(nb))
    skipped = []
    with pytest.raises(ValueError, match="no finished chapter"):
        published.write("ci", tmp_path, skipped)
    assert skipped == ["00_x.ipynb"]


def test_publishing_one_chapter_keeps_the_others_in_the_readme(tmp_path, monkeypatch):
    monkeypatch.setattr(published, "RESULTS", tmp_path / "results")
    for name, day in (("01_first.ipynb", "2026-12-01"), ("02_second.ipynb", "2026-12-02")):
        build = tmp_path / f"build-{day}"
        (build / "laptop").mkdir(parents=True)
        nb = _executed("x")
        nb["metadata"]["w2s_run"]["finished"] = day
        (build / "laptop" / name).write_text(json.dumps(nb))
        published.write("laptop", build)                      # each build holds one chapter only
    readme = (tmp_path / "results" / "laptop" / "README.md").read_text()
    assert "[01_first](01_first.ipynb) | a test CPU, 2 cores, float32, 2026-12-01" in readme
    assert "[02_second](02_second.ipynb) | a test CPU, 2 cores, float32, 2026-12-02" in readme


def _printed_text(output: dict) -> str:
    """What a reader sees of one output as text: streams and the text, HTML and Markdown data
    (no images, no execution counts, where small numbers would match by chance)."""
    if output.get("output_type") == "stream":
        parts = [output.get("text", "")]
    else:
        data = output.get("data", {})
        parts = [data.get(k, "") for k in ("text/plain", "text/html", "text/markdown")]
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


def test_each_chapters_expected_values_are_in_its_published_run():
    # a chapter's "What to expect at laptop" table quotes its published run: every number of its
    # "published value" column must be printed there (republishing with other numbers fails here)
    from w2s_helpers.core.paths import NOTEBOOKS

    checked = 0
    for chapter in sorted(NOTEBOOKS.glob("0*_*.ipynb")):
        cell = next((c for c in json.loads(chapter.read_text())["cells"] if c.get("id") == "expect-laptop"), None)
        if cell is None:
            continue
        run = json.loads((published.RESULTS / "laptop" / chapter.name).read_text())
        printed = "\n".join(_printed_text(o) for c in run["cells"] for o in c.get("outputs", []))
        for row in "".join(cell["source"]).splitlines():
            cols = [c.strip() for c in row.strip("|").split("|")]
            if len(cols) != 3 or cols[1] in ("published value", "---"):
                continue
            # numbers, not parts of names ("SmolLM2-135M", "Qwen2.5-0.5B") or of "1e-3"
            for m in re.finditer(r"(?<![\w.])(?<!\w-)[−+-]?\d+(?:\.\d+)?%?(?!\w|\.\d)", cols[1]):
                number = m.group().replace("−", "-")
                # a bare integer ("10 not detected") is checked with the word after it: small
                # integers alone are printed almost everywhere; every number is a whole token
                word = re.match(r" [A-Za-z]+", cols[1][m.end():]) if number.lstrip("+-").isdigit() else None
                quoted = re.escape(number) + (word.group() if word else "")
                sign = "" if number[0] in "+-" else "−+-"          # an unsigned 0.42 is not -0.42
                assert re.search(rf"(?<![\d.{sign}]){quoted}(?![\d.]*\d)", printed), \
                    (chapter.name, cols[0], quoted)
                checked += 1
    assert checked >= 20
