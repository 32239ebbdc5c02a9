"""Results you can browse: executed chapters copied where GitHub renders them, ``results/<profile>/``.

    make course PROFILE=laptop                      # executes every chapter into build/laptop/
    python -m w2s_helpers results --profile laptop  # copies them to results/laptop/ (then commit)

A published copy keeps every table, figure and printed line of the executed chapter, with four
changes:

- a banner cell on top: the profile, the machine and date it ran on (the runner's stamp in the
  executed copy's metadata; a copy without one is refused), and
  the notice that it quotes a few HH-RLHF pairs (Anthropic, MIT licence) with a content warning;
- the outputs of cells tagged ``example-browser`` (pages of raw pairs to read through) are
  cleared, with a note saying how to browse them;
- paths of the machine that ran it are replaced (repository root -> ``.``, the data folder ->
  ``<data>``, the course cache -> ``<cache>``, the home folder -> ``~``);
- papermill's per-cell timings and the kernel's execution counts are dropped, so a rerun that
  changes nothing shows no diff beyond the numbers that did change; figures are re-encoded with a
  128-colour palette and a table's plain-text twin of its HTML is dropped (about 3x smaller).

A chapter whose executed copy holds an error is refused: a published result is a finished run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from w2s_helpers.core.paths import REPO_ROOT
from w2s_helpers.core.store import atomic_write_bytes

RESULTS = REPO_ROOT / "results"
BROWSER_TAG = "example-browser"
BROWSER_NOTE = ("*Output cleared in the published copy: this cell pages through raw HH-RLHF pairs. "
                "Run the chapter to browse them.*")


def machine_paths() -> list[tuple[str, str]]:
    """(path, replacement) pairs, the longest paths first so a nested one is replaced whole."""
    from w2s_helpers.core.data import resolve_data_dir
    from w2s_helpers.core.store import cache_root

    pairs = [(str(REPO_ROOT), "."), (str(Path.home()), "~"), (str(cache_root()), "<cache>")]
    data = [os.environ.get("W2S_DATA_DIR", "")]
    try:
        data.append(str(resolve_data_dir()))            # the default folder beside the checkout, too
    except FileNotFoundError:
        pass
    for d in filter(None, data):
        pairs += [(str(Path(d).resolve()), "<data>"), (d, "<data>")]
    pairs = [(p, r) for p, r in pairs if p and p not in ("/", ".")]
    return sorted(set(pairs), key=lambda pr: -len(pr[0]))


def scrub(text: str, pairs: list[tuple[str, str]] | None = None) -> str:
    """``text`` with every machine path of :func:`machine_paths` replaced."""
    for path, repl in pairs or machine_paths():
        text = text.replace(path, repl)
    return text


def shrink_png(b64: "str | list[str]", colors: int = 128) -> str:
    """A base64 PNG re-encoded with a palette of ``colors`` (plots need few; about 3x smaller)."""
    import base64
    import io

    from PIL import Image

    raw = base64.b64decode("".join(b64) if isinstance(b64, list) else b64)
    image = Image.open(io.BytesIO(raw))
    if image.mode == "P":                            # already a palette: published before
        return "".join(b64) if isinstance(b64, list) else b64
    buf = io.BytesIO()
    image.convert("RGB").quantize(colors=colors).save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def ran_on(executed: dict) -> str:
    """Where and when the chapter ran, from the runner's stamp (``metadata.w2s_run``). Raises
    ``ValueError`` for a copy without it (not executed through ``python -m w2s_helpers run``, or
    stopped before it finished)."""
    run = executed.get("metadata", {}).get("w2s_run")
    if not run:
        raise ValueError("no record of where it ran (metadata.w2s_run): execute it with "
                         "`python -m w2s_helpers run` (make course) and let it finish")
    return f"{run['machine']}, {run['finished']}"


def publish(executed: dict, profile: str, ran_on: str) -> dict:
    """A published copy (a new notebook dict) of an executed chapter ``executed`` (nbformat 4 JSON).

    ran_on: one line naming the machine and the date, shown in the banner (:func:`ran_on`).
    Raises ``ValueError`` if a cell holds an error output."""
    nb = json.loads(json.dumps(executed))
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                raise ValueError(f"cell {i} failed ({out.get('ename')}): publish a finished run only")
    count = 0
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] != "code":
            continue
        # numbered in order (the run executed them so), not left blank: "In [ ]" reads as never run
        if cell.get("execution_count") is not None:
            count += 1
            cell["execution_count"] = count
        for out in cell.get("outputs", []):
            if out.get("output_type") == "execute_result":
                out["execution_count"] = cell["execution_count"]
            data = out.get("data", {})
            if "text/html" in data:                 # GitHub renders the HTML table; the text twin is a copy
                data.pop("text/plain", None)
            if "image/png" in data:
                data["image/png"] = shrink_png(data["image/png"])
        if BROWSER_TAG in cell.get("metadata", {}).get("tags", []):
            cell["outputs"] = [{"output_type": "display_data", "metadata": {},
                                "data": {"text/markdown": [BROWSER_NOTE]}}]
    banner = {"cell_type": "markdown", "id": "published-banner", "metadata": {"tags": ["published-banner"]},
              "source": [f"> **Published run** at profile `{profile}`: {ran_on}. Regenerate with "
                         f"`make course PROFILE={profile}` then `python -m w2s_helpers results --profile {profile}`.\n",
                         ">\n",
                         "> This copy quotes a few preference pairs from Anthropic's HH-RLHF (MIT licence). **Content "
                         "warning**: some prompts and responses describe harmful, offensive or upsetting requests.\n"]}
    nb["cells"] = [c for c in nb["cells"] if c.get("id") != "published-banner"]
    nb["cells"].insert(0, banner)
    nb.get("metadata", {}).pop("papermill", None)
    return json.loads(scrub(json.dumps(nb, ensure_ascii=False)))


def write(profile: str, build: str | Path = "build", skipped: list[str] | None = None) -> list[Path]:
    """Publish every finished chapter of ``build/<profile>/`` to ``results/<profile>/`` and write
    its README (every chapter published there, this time or before, and where each ran). Returns the written paths. A copy without the
    runner's stamp (still running, stopped, or not run through the runner) is left out and named
    in ``skipped`` (a list to append to); a copy with an error output raises ``ValueError``."""
    src = Path(build) / profile
    if not src.is_absolute():
        src = REPO_ROOT / src
    chapters = sorted(p for p in src.glob("[0-9][0-9]*_*.ipynb"))
    if not chapters:
        raise FileNotFoundError(f"no executed chapters in {scrub(str(src))}: run `make course PROFILE={profile}` first")
    out_dir = RESULTS / profile
    prepared = []
    for path in chapters:
        executed = json.loads(path.read_text())
        if not executed.get("metadata", {}).get("w2s_run"):
            if skipped is not None:
                skipped.append(path.name)
            continue
        try:
            where = ran_on(executed)
            prepared.append((path.name, where, publish(executed, profile, where)))
        except ValueError as e:
            raise ValueError(f"{path.name}: {e}") from None
    if not prepared:
        raise ValueError(f"no finished chapter in {scrub(str(src))} (none carries the runner's stamp)")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, _, nb in prepared:
        dst = out_dir / name
        atomic_write_bytes(dst, (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode())
        written.append(dst)
    lines = [f"# Published runs at profile `{profile}`", "",
             f"Executed chapters with every output; regenerate with `make course PROFILE={profile}` and "
             f"`python -m w2s_helpers results --profile {profile}`. They quote a few HH-RLHF pairs (Anthropic, "
             "MIT licence; content warning: harmful requests). No data file is committed.", "",
             "| chapter | ran on | size |", "| --- | --- | --- |"]
    for dst in sorted(out_dir.glob("[0-9][0-9]*_*.ipynb")):     # this run's chapters and those published before
        try:
            where = ran_on(json.loads(dst.read_text()))
        except ValueError:
            where = "unknown (no record of where it ran)"
        lines.append(f"| [{dst.stem}]({dst.name}) | {where} | {dst.stat().st_size / 1024:.0f} KiB |")
    readme = out_dir / "README.md"
    atomic_write_bytes(readme, ("\n".join(lines) + "\n").encode())
    return written + [readme]
