"""The chapter runner: parameters, a line per cell, text progress bars, peak memory."""

from w2s_helpers.course import runner


def _chapter(folder, name="05_tiny.ipynb"):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": runner.KERNEL, "language": "python", "display_name": "Python"}
    params = nbformat.v4.new_code_cell('PROFILE = "laptop"\nREGIME = "probe"\nSTEPS = 2')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import os\nfrom w2s_helpers.core import progress\n"
        "print(f'regime={REGIME} steps={STEPS} progress={os.environ.get(progress.PROGRESS_ENV)}')\n"
        "for _ in progress.bar(range(STEPS), desc='tiny loop', mininterval=0): pass")
    nb.cells = [nbformat.v4.new_markdown_cell("# a tiny chapter"), params, body]
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / name)


def test_run_all_shows_cells_parameters_and_bars(tmp_path, monkeypatch, capsys):
    _chapter(tmp_path / "nbs")
    monkeypatch.setattr(runner, "NOTEBOOKS", tmp_path / "nbs")
    rows = runner.run_all("ci", tmp_path / "out", progress=True, params={"REGIME": "top_blocks", "STEPS": 3},
                          timeout=120)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "cell 1/3" in text and "cell 3/3" in text          # parameters, injected parameters, body
    assert "regime=top_blocks steps=3 progress=text" in text  # -p values reached the kernel
    assert "tiny loop" in text and "3/3" in text               # the cell's own bar, as text
    assert rows[0]["notebook"] == "05_tiny.ipynb" and rows[0]["seconds"] > 0 and rows[0]["peak_rss_mb"] > 0
    import os

    assert os.environ.get("W2S_PROGRESS") is None  # the runner's setting does not leak


def test_quiet_run_prints_cells_only(tmp_path, monkeypatch, capsys):
    _chapter(tmp_path / "nbs")
    monkeypatch.setattr(runner, "NOTEBOOKS", tmp_path / "nbs")
    runner.run_all("ci", tmp_path / "out", progress=True, echo=False, timeout=120)
    out = capsys.readouterr()
    assert "cell 3/3" in out.out and "regime=probe" not in out.out + out.err


def test_quiet_transformers_keeps_hub_download_bars():
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    from w2s_helpers.core.models import quiet_transformers

    enable_progress_bars()
    with quiet_transformers():
        assert not are_progress_bars_disabled()
    assert not are_progress_bars_disabled()
    disable_progress_bars()  # a user who turned them off keeps them off
    with quiet_transformers():
        assert are_progress_bars_disabled()
    enable_progress_bars()


def test_a_chapter_that_declares_out_dir_is_given_its_output_folder():
    from w2s_helpers.course import runner

    assert "OUT_DIR" in runner.parameters_source(runner.NOTEBOOKS / "06_reproduction_report.ipynb")
    assert "OUT_DIR" not in runner.parameters_source(runner.NOTEBOOKS / "05_mitigations.ipynb")
    assert "PROFILE" in runner.parameters_source(runner.NOTEBOOKS / "00_setup.ipynb")


def test_peak_memory_counts_a_kernel_that_ends_between_two_samples():
    # In a fresh interpreter (so no earlier child sets the rusage figure), a child that holds
    # ~300 MiB for a moment and exits is counted although the sampler never looks in time.
    import subprocess
    import sys

    code = (
        "import subprocess, sys\n"
        "from w2s_helpers.course.runner import _PeakRSS\n"
        "with _PeakRSS(every_s=3600) as rss:\n"
        "    subprocess.run([sys.executable, '-c', 'x = bytearray(300 * 2**20); x[::4096] = b\"1\" * len(x[::4096])'], check=True)\n"
        "print(rss.peak)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) >= 300 * 2**20


def test_the_cell_limit_follows_the_profile_unless_given():
    # a hung cell stops CI within the hour; a long cell at laptop (chapter 4's policies: hours cold) does not stop
    assert runner.cell_timeout("ci") == 3600
    assert runner.cell_timeout("laptop") >= 4 * 3600
    assert runner.cell_timeout("paper") is None
    assert runner.cell_timeout("laptop", 120) == 120 and runner.cell_timeout("ci", 0) is None
