"""Where the course keeps things, and how it writes them safely.

- :func:`cache_dir` is the root for converted models, features and (later) checkpoints.
  Set ``W2S_CACHE_DIR`` to move it; the default is ``~/.cache/w2s-deception-course``
  so helpers never write into the working directory.
- :func:`atomic_write_bytes` and :func:`atomic_dir` make interrupted runs safe: a reader
  sees either the old entry or the complete new one, never a half-written file.
- :func:`content_hash` keys every cache entry by the content that produced it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

CACHE_ENV = "W2S_CACHE_DIR"


def cache_root() -> Path:
    """``$W2S_CACHE_DIR``, else ``~/.cache/w2s-deception-course`` (not created here)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "w2s-deception-course")


def cache_dir(sub: str | None = None) -> Path:
    """Return (and create) the cache root, or one of its sub-folders."""
    root = cache_root()
    path = root / sub if sub else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_hash(*parts: Any, length: int = 16) -> str:
    """Stable hex digest of JSON-serialisable parts (dict keys sorted).

    Strings, numbers, lists, dicts and dataclass-like ``dict``s all hash the same way
    on every run and every machine, so the digest can key a cache entry.
    """
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Full sha256 hex digest of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a directory in a temporary sibling, then move it into place.

    Usage::

        with atomic_dir(target) as tmp:
            model.save_pretrained(tmp)

    If the block raises, the temporary folder is removed and ``path`` is untouched.
    If ``path`` already exists when the block ends (another process won the race),
    the new copy is discarded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        tmp.chmod(0o755)
        if path.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
