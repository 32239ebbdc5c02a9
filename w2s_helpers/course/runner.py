"""Execute the chapters headless with papermill, one profile at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from w2s_helpers.core.paths import NOTEBOOKS

KERNEL = "w2s-course"


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


CHAPTERS = "[0-9][0-9]*_*.ipynb"     # every chapter: 00_..., 01b_..., 03b_...


def is_bonus(notebook: Path) -> bool:
    """A bonus chapter says so in its metadata (``"w2s": {"bonus": true}``); ``make course`` skips it
    unless asked (``BONUS=1``). A lettered chapter (``03b_``) may be a main one."""
    meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    return bool(meta.get("w2s", {}).get("bonus", False))


def chapters(pattern: str = CHAPTERS, bonus: bool = False) -> list[Path]:
    """The chapter notebooks matching ``pattern`` in order (found on disk, never a hand-kept list):
    the main ones, and with ``bonus=True`` the bonus ones too, each after the chapter it extends
    (01 < 01b < 02)."""
    found = [p for p in NOTEBOOKS.glob(pattern) if p.is_file()]
    return sorted(p for p in found if bonus or not is_bonus(p))


def output_folder(out_dir: str | Path, profile: str, task: str = "hh") -> Path:
    """Where the executed chapters of a profile go: ``<out>/<profile>``, ``<out>/<profile>-<task>``
    for another task than HH."""
    return Path(out_dir) / (profile if task == "hh" else f"{profile}-{task}")


class _Progress:
    """Terminal progress of one chapter: a line per code cell (index, elapsed, its first line)."""

    def __init__(self, label: str, total: int):
        self.label, self.total = label, total
        self.done, self.t0 = 0, time.perf_counter()

    def on_cell_start(self, cell, cell_index):
        if cell.cell_type != "code" or not cell.source.strip():
            return
        self.done += 1
        first = next((ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")),
                     cell.source.splitlines()[0])
        print(f"[{self.label}] cell {self.done}/{self.total}  {_minutes(time.perf_counter() - self.t0)}  "
              f"{first[:70]}", flush=True)


class _PeakRSS:
    """Largest resident memory of this process's children (the kernel) while a chapter runs.

    Two readings, the larger kept: the children's resident memory sampled every ``every_s``
    seconds, and, once the kernel has exited and been waited for, the kernel's own peak from
    ``getrusage(RUSAGE_CHILDREN)`` when it raised that figure (it is the largest of every child
    this process has waited for, so a smaller kernel after a larger one leaves it unchanged and
    only the samples count). A short chapter on a fast machine can end between two samples.
    """

    def __init__(self, every_s: float = 0.05):
        import threading

        self.peak, self.every_s = 0, every_s
        self._children_before = _children_maxrss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                rss = sum(c.memory_info().rss for c in me.children(recursive=True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        after = _children_maxrss()
        if after > self._children_before:
            self.peak = max(self.peak, after)


def _children_maxrss() -> int:
    """Largest resident set, in bytes, of any child this process has waited for (0 if unknown)."""
    try:
        import resource
    except ImportError:        # not on Windows
        return 0
    import sys

    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return kib if sys.platform == "darwin" else kib * 1024     # bytes on macOS, KiB on Linux


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def parameters_source(notebook: Path) -> str:
    """The source of the notebook's cell tagged ``parameters`` ("" if it has none)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    return next(("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), "")


# The limit per cell, per profile: it catches a hung cell in CI, and must not stop a long one where
# long cells are the design (at `laptop`, chapter 4 trains 36 strong policies in one cell, about 2.2 h cold,
# and chapter 5's policy cell trains 78 more); a profile not listed has no limit.
CELL_TIMEOUT = {"ci": 3600, "laptop": 8 * 3600}


def cell_timeout(profile: str, timeout: int | None = None) -> int | None:
    """The per-cell limit in seconds: ``timeout`` when given (0: no limit), else the profile's
    (:data:`CELL_TIMEOUT`; None: no limit)."""
    if timeout is not None:
        return timeout or None
    return CELL_TIMEOUT.get(profile)


def run_chapter(notebook: Path, profile: str, out_dir: Path, timeout: int | None = None, progress: bool = False,
                echo: bool = True, **params) -> Path:
    """Execute one notebook with ``PROFILE=profile`` (plus ``params``); return the output path.

    ``timeout`` is the limit per cell, in seconds (default: the profile's, :func:`cell_timeout`). ``progress=True`` prints a line per code cell
    and (``echo``) the cells' prints and text progress bars as they arrive (the kernel runs with
    ``W2S_PROGRESS=text``, see :mod:`w2s_helpers.core.progress`). Raises papermill's
    ``PapermillExecutionError`` on a failing cell; the output notebook is still written, with
    the error shown. A chapter whose parameters cell declares ``OUT_DIR`` (chapter 6 writes files
    beside its executed copy) is given ``out_dir`` unless ``params`` names another.
    """
    import os

    import nbformat
    import papermill as pm

    from w2s_helpers.core.progress import PROGRESS_ENV

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / notebook.name
    if "OUT_DIR" not in params and "OUT_DIR" in parameters_source(notebook):
        params["OUT_DIR"] = str(out_dir.resolve())      # the kernel runs in notebooks/: a relative path would move
    hooks: dict = {}
    before = os.environ.get(PROGRESS_ENV)
    if progress:
        source = nbformat.read(str(notebook), as_version=4)
        total = sum(c.cell_type == "code" and bool(c.source.strip()) for c in source.cells) + 1  # + injected
        cells = _Progress(f"{profile}] [{notebook.stem}", total)
        hooks = {"on_cell_start": cells.on_cell_start}
        if echo:
            hooks.update(stdout_file=sys.stdout, stderr_file=sys.stderr)
        os.environ[PROGRESS_ENV] = "text"  # the kernel inherits it
    try:
        pm.execute_notebook(
            str(notebook), str(out), parameters={"PROFILE": profile, **params},
            kernel_name=ensure_kernel(), cwd=str(notebook.parent), execution_timeout=cell_timeout(profile, timeout),
            progress_bar=False, log_output=False, coalesce_streams=True, **hooks,
        )
    finally:
        if progress:
            if before is None:
                os.environ.pop(PROGRESS_ENV, None)
            else:
                os.environ[PROGRESS_ENV] = before
    stamp(out, profile)
    return out


def stamp(executed: Path, profile: str) -> None:
    """Record in a finished chapter's metadata where and when it ran (``w2s_run``: machine, date,
    profile), so a published copy names the machine that ran it, not the one that publishes it."""
    from w2s_helpers.core.store import atomic_write_bytes
    from w2s_helpers.course.env import machine_line

    nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    nb.setdefault("metadata", {})["w2s_run"] = {"machine": machine_line(), "profile": profile,
                                                "finished": time.strftime("%Y-%m-%d")}
    atomic_write_bytes(Path(executed), (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode())


class ChapterFailed(RuntimeError):
    """A chapter raised; the executed notebook (with the error shown) is kept."""


def run_all(profile: str, out_dir: str | Path = "build", pattern: str = CHAPTERS,
            timeout: int | None = None, progress: bool = False, echo: bool = True,
            params: dict | None = None, bonus: bool = False, task: str = "hh") -> list[dict]:
    """Run every chapter matching ``pattern`` (and with ``bonus`` the bonus chapters) in order at
    ``profile`` on ``task``; return one row per chapter (``notebook``, ``seconds``, ``peak_rss_mb`` of
    the kernel).

    ``params`` are passed to every chapter (``REGIME``, ...), and ``TASK=task`` unless it is "hh"
    (every chapter's default); ``timeout`` is per cell. Outputs go to :func:`output_folder`.
    Stops at the first failing chapter with :class:`ChapterFailed`, naming the cell's error
    and where the executed notebook was written.
    """
    from papermill.exceptions import PapermillExecutionError

    out = output_folder(out_dir, profile, task)
    params = {**(params or {}), **({"TASK": task} if task != "hh" else {})}
    rows: list[dict] = []
    found = chapters(pattern, bonus)
    if not found:
        raise FileNotFoundError(f"no notebook in {NOTEBOOKS} matches {pattern!r}")
    t_all = time.perf_counter()
    for i, nb in enumerate(found, 1):
        t0 = time.perf_counter()
        print(f"[{profile}] chapter {i}/{len(found)}: {nb.name} ...", flush=True)
        try:
            with _PeakRSS() as rss:
                run_chapter(nb, profile, out, timeout=timeout, progress=progress, echo=echo, **params)
        except PapermillExecutionError as e:
            raise ChapterFailed(f"{nb.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                                f"the executed notebook is {out / nb.name}") from None
        dt = time.perf_counter() - t0
        rows.append({"notebook": nb.name, "seconds": round(dt, 1), "peak_rss_mb": round(rss.peak / 2**20)})
        print(f"[{profile}] {nb.name} done in {dt / 60:.1f} min (kernel peak {rss.peak / 2**30:.1f} GiB; "
              f"{_minutes(time.perf_counter() - t_all)} so far) -> {out / nb.name}", flush=True)
    return rows
