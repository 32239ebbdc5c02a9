"""Every numbered chapter executes end to end with papermill at the ci profile.

The notebooks hold their own assertions (properties that must hold at every profile);
a failing cell fails the test, and the executed notebook is kept for inspection.
"""

import pytest

from w2s_helpers.core import profiles
from w2s_helpers.course import runner

CHAPTERS = runner.chapters(bonus=True)  # CI runs the bonus chapters too


def test_chapters_are_found():
    assert CHAPTERS and CHAPTERS[0].name == "00_setup.ipynb"
    main = runner.chapters()
    assert set(main) < set(CHAPTERS)
    bonus = [p for p in CHAPTERS if p not in main]
    assert bonus and all(runner.is_bonus(p) for p in bonus) and not any(runner.is_bonus(p) for p in main)
    names = [p.name for p in CHAPTERS]
    assert names.index("01_weak_to_strong.ipynb") < names.index("01b_training_regimes.ipynb") < names.index(
        "02_conflicting_objectives.ipynb")


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_at_ci(notebook, tmp_path, monkeypatch, model_cache):
    import nbformat

    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))  # the kernel inherits the environment
    out = runner.run_chapter(notebook, "ci", tmp_path, timeout=1200)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"


@pytest.mark.notebook
@pytest.mark.parametrize("name", ["01_weak_to_strong.ipynb", "04_preference_optimization.ipynb", "05_mitigations.ipynb"])
def test_chapter_runs_on_the_arithmetic_task_at_ci(name, tmp_path, monkeypatch, model_cache):
    """Chapters take TASK; 2 and 3 run on the arithmetic task inside chapter 3b (above), 1, 4 and 5 here."""
    import nbformat

    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    out = runner.run_chapter(runner.NOTEBOOKS / name, "ci", tmp_path, timeout=1200, TASK="arithmetic")
    nb = nbformat.read(out, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    shown = "".join(o.get("text", "") + "".join(str(o.get("data", {}).get(k, "")) for k in ("text/plain", "text/html"))
                    for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    if name.startswith("04"):
        assert "What is" in shown                       # its answers side by side are to arithmetic prompts


def test_failing_chapter_is_reported_clearly(tmp_path, monkeypatch):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": runner.KERNEL, "language": "python", "display_name": "Python"}
    params = nbformat.v4.new_code_cell('PROFILE = "laptop"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell('assert PROFILE == "laptop", f"ran at {PROFILE}"')]
    (tmp_path / "nbs").mkdir()
    nbformat.write(nb, tmp_path / "nbs" / "07_broken.ipynb")
    monkeypatch.setattr(runner, "NOTEBOOKS", tmp_path / "nbs")
    with pytest.raises(runner.ChapterFailed, match=r"07_broken.ipynb failed in cell \d+: AssertionError: ran at ci"):
        runner.run_all("ci", tmp_path / "out")
    assert (tmp_path / "out" / "ci" / "07_broken.ipynb").exists()  # kept for inspection


def second_data_folder(root):
    """A second data folder in the HH layout, built from what we have: D_gt, D_w2s and the helpful pairs as
    they are, and a new D_test of 300 D_w2s pairs that the ci profile's D_w2s pool never draws (disjoint from
    every pool the chapters train on)."""
    import shutil

    from w2s_helpers.core import data, pools

    for name in ("harmless_gt", "harmless_w2s", "helpful"):
        src, _ = data.split_path(name)                    # the helpful pairs may be the gzipped fallback file
        dst = root / src.relative_to(data.resolve_data_dir())
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    w2s_path, turns = data.split_path("harmless_w2s")
    drawn = {p.source for p in pools.draw_pools(profiles.get("ci"))["w2s"]}
    lines = w2s_path.read_text(encoding="utf-8").splitlines()
    unused = [p for p in data.load_pairs(w2s_path, turns) if p.source not in drawn][:300]
    test = root / data.SPLITS["harmless_test"][0]
    test.write_text("\n".join(lines[int(p.source.rsplit(":", 1)[1]) - 1] for p in unused) + "\n", encoding="utf-8")
    return root


@pytest.mark.notebook
def test_the_course_runs_on_a_second_data_folder(tmp_path, monkeypatch, model_cache):
    """Chapters 0-6 at ci on another folder (--data-dir): nothing crashes, the saved runs are the folder's own,
    and the report names its data and writes its claims table."""
    import nbformat

    from w2s_helpers.core import data

    folder = second_data_folder(tmp_path / "hh-second")
    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    monkeypatch.setenv(data.DATA_ENV, str(folder))
    rows = runner.run_all("ci", tmp_path / "out", pattern="0[0-6]_*.ipynb", progress=False)
    assert [r["notebook"] for r in rows][-1] == "06_reproduction_report.ipynb"
    report = tmp_path / "out" / "ci"
    claims = (report / "claims-hh.csv").read_text(encoding="utf-8")
    assert claims.startswith("claim,") and "1. W2S deception exists" in claims
    nb = nbformat.read(report / "06_reproduction_report.ipynb", as_version=4)
    shown = "".join(str(o.get("data", {}).get("text/html", "")) + o.get("text", "")
                    for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "hh-second" in shown                   # the report names the data it was built from
