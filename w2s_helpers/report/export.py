"""The claims table written next to the executed notebook, as CSV and Markdown (atomic writes)."""

from __future__ import annotations

from pathlib import Path

from w2s_helpers.core.store import atomic_write_bytes


def markdown(frame) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (index dropped; pipes in cells escaped)."""
    cols = list(frame.columns)
    cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write(frame, folder: str | Path, stem: str = "claims", summary: str = "") -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` (the table, then ``summary``) into ``folder``."""
    folder = Path(folder)
    csv = atomic_write_bytes(folder / f"{stem}.csv", frame.to_csv(index=False).encode("utf-8"))
    text = markdown(frame) + (f"\n{summary}\n" if summary else "")
    md = atomic_write_bytes(folder / f"{stem}.md", text.encode("utf-8"))
    return [csv, md]
