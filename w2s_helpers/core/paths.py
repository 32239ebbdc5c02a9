"""Where the repository's own folders are (the package is installed editable from it)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]   # w2s_helpers/core/paths.py -> the repository
NOTEBOOKS = REPO_ROOT / "notebooks"
