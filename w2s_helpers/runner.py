"""Execute the chapters headless with papermill, one profile at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from .data import REPO_ROOT

KERNEL = "w2s-course"
NOTEBOOKS = REPO_ROOT / "notebooks"


def ensure_kernel(name: str = KERNEL) -> str:
    """Register a Jupyter kernel for this interpreter (``--sys-prefix``) if it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if name in specs:
        spec = json.loads((Path(specs[name]) / "kernel.json").read_text())
        if Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve():
            return name
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", name,
         "--display-name", "Python (w2s-course)"],
        check=True, capture_output=True,
    )
    return name


def chapters(pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    """Every numbered chapter notebook, in order (found on disk, never a hand-kept list)."""
    return sorted(p for p in NOTEBOOKS.glob(pattern) if p.is_file())


def run_chapter(notebook: Path, profile: str, out_dir: Path, timeout: int = 3600, **params) -> Path:
    """Execute one notebook with ``PROFILE=profile`` (plus ``params``); return the output path.

    Raises papermill's ``PapermillExecutionError`` on a failing cell; the output notebook
    is still written, with the error shown.
    """
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / notebook.name
    pm.execute_notebook(
        str(notebook), str(out), parameters={"PROFILE": profile, **params},
        kernel_name=ensure_kernel(), cwd=str(notebook.parent), execution_timeout=timeout,
        progress_bar=False, log_output=False,
    )
    return out


class ChapterFailed(RuntimeError):
    """A chapter raised; the executed notebook (with the error shown) is kept."""


def run_all(profile: str, out_dir: str | Path = "build", pattern: str = "[0-9][0-9]_*.ipynb") -> list[tuple[str, float]]:
    """Run every chapter in order at ``profile``; print and return (notebook, seconds).

    Stops at the first failing chapter with :class:`ChapterFailed`, naming the cell's error
    and where the executed notebook was written.
    """
    from papermill.exceptions import PapermillExecutionError

    out = Path(out_dir) / profile
    times = []
    found = chapters(pattern)
    if not found:
        raise FileNotFoundError(f"no notebook in {NOTEBOOKS} matches {pattern!r}")
    for nb in found:
        t0 = time.perf_counter()
        print(f"[{profile}] {nb.name} ...", flush=True)
        try:
            run_chapter(nb, profile, out)
        except PapermillExecutionError as e:
            raise ChapterFailed(f"{nb.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                                f"the executed notebook is {out / nb.name}") from None
        dt = time.perf_counter() - t0
        times.append((nb.name, dt))
        print(f"[{profile}] {nb.name} done in {dt / 60:.1f} min -> {out / nb.name}", flush=True)
    return times
