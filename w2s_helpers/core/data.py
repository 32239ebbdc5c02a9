"""Preference pairs from Anthropic HH-RLHF: loading, validation and subsets.

Record format (one JSON object per line, ``.jsonl`` or ``.jsonl.gz``)::

    {"chosen": "\\n\\nHuman: <prompt>\\n\\nAssistant: <response>", "rejected": "..."}

``chosen`` is the harmless (or more helpful) side. A :class:`PreferencePair` keeps the
prompt once and the two responses apart, so later chapters can render them for a reward
model (whole transcript) or a policy (prompt, then response).

Where the data lives: ``data_dir`` argument > ``W2S_TASK_DATA_DIR`` (set by
:func:`w2s_helpers.core.tasks.use` for a generated task) > ``W2S_DATA_DIR`` environment variable >
``../shared/data`` beside the repository, if present. Users with internet can build the
same kind of files from the hub with :func:`w2s_helpers.core.hub.build_hub_splits`.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

from w2s_helpers.core.paths import REPO_ROOT
from w2s_helpers.core.store import content_hash, file_sha256

DATA_ENV = "W2S_DATA_DIR"
TASK_DATA_ENV = "W2S_TASK_DATA_DIR"   # a generated task's folder (core.tasks.use); wins over DATA_ENV
HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"

TurnPolicy = Literal["strict", "first"]


class DataFormatError(ValueError):
    """Malformed preference data. The message starts with ``file:line``."""


@dataclass(frozen=True)
class PreferencePair:
    """One preference pair with a shared single-turn prompt.

    prompt:   the human turn, stripped.
    chosen:   the preferred response (harmless / more helpful), stripped.
    rejected: the other response, stripped.
    source:   ``file:line`` the pair was read from.
    """

    prompt: str
    chosen: str
    rejected: str
    source: str = ""

    def transcript(self, side: Literal["chosen", "rejected"]) -> str:
        """The whole single-turn transcript for one side, in HH-RLHF format."""
        return format_transcript(self.prompt, getattr(self, side))


# Splits known to the course: name -> (relative path, turn policy, description).
# "first": one Human turn; the response is everything after the first Assistant marker
# (the paper's splits, where some rejected responses run on into invented turns).
# "strict": exactly one Human and one Assistant marker (filtering raw multi-turn HH-RLHF).
SPLITS: dict[str, tuple[str, TurnPolicy, str]] = {
    "harmless_gt": ("hh-single-turn/harmless_train_gt.jsonl", "first", "D_gt: trains weak and strong ceilings"),
    "harmless_w2s": ("hh-single-turn/harmless_train_w2s.jsonl", "first", "D_w2s: weak model labels it for the student"),
    "harmless_test": ("hh-single-turn/harmless_test.jsonl", "first", "D_test: every accuracy and Deception Score"),
    "helpful": ("hh-single-turn/helpful_train.jsonl", "first", "helpfulness pairs: the conflicting objective (ch. 2)"),
}
# Offline stand-in for the helpfulness split: raw HH-RLHF helpful-base test, filtered.
HELPFUL_FALLBACK = ("hh-rlhf/helpful-base-test.jsonl.gz", "strict")

# sha256 of the offline files the course was developed on (see data/README.md).
KNOWN_SHA256 = {
    "hh-single-turn/harmless_train_gt.jsonl": "a3fcbc951d6f67f00c8b327ad05970300e4f67c2e9529657add1ebe38875c1a7",
    "hh-single-turn/harmless_train_w2s.jsonl": "4664e946f7eda2d033bfc85dfe25d4355bfeb2d1c8e3db462dbfc7dc1bbef2c5",
    "hh-single-turn/harmless_test.jsonl": "cc7f5163a3ca0179a01553a13ac9739251ce8c63944929e230a23f45a755e68e",
    "hh-rlhf/helpful-base-test.jsonl.gz": "8be3fc1a13b27901631696f2be6f184c799f1baeaf145f53ac5db24960adc37b",
}


def format_transcript(prompt: str, response: str) -> str:
    """Render a single-turn exchange the way HH-RLHF writes it."""
    return f"{HUMAN} {prompt}{ASSISTANT} {response}"


def split_transcript(text: str, turns: TurnPolicy = "strict") -> tuple[str, str] | None:
    """Split an HH transcript into ``(prompt, response)``; ``None`` if it does not qualify.

    ``turns="strict"``: exactly one ``"\n\nHuman:"`` marker (at the start) and exactly one
    ``"\n\nAssistant:"`` marker: a genuinely single-turn exchange (filtering raw HH-RLHF).
    ``turns="first"``: the first exchange; the prompt is everything up to the first
    Assistant marker and must hold one Human turn, and the response is all the rest, even
    when a sampled response runs on into invented turns (the paper's splits do this).
    """
    if not text.startswith(HUMAN) or ASSISTANT not in text:
        return None
    cut = text.index(ASSISTANT)
    prompt, response = text[len(HUMAN):cut], text[cut + len(ASSISTANT):]
    if HUMAN in prompt:
        return None
    if turns == "strict" and (HUMAN in response or ASSISTANT in response):
        return None
    return prompt.strip(), response.strip()


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, record)`` for every non-blank line, validating each.

    Raises :class:`DataFormatError` naming ``file:line`` for invalid JSON, a record that
    is not an object, a missing ``chosen``/``rejected`` field or a non-string field, and
    for a file with no records at all. Nothing is yielded past a bad line's predecessor.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file (see data/README.md for where data lives)")
    n = 0
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFormatError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
                if not isinstance(rec, dict):
                    raise DataFormatError(f"{where}: expected a JSON object, got {type(rec).__name__}")
                for key in ("chosen", "rejected"):
                    if key not in rec:
                        raise DataFormatError(f"{where}: missing field {key!r} (fields: {sorted(rec)})")
                    if not isinstance(rec[key], str):
                        raise DataFormatError(f"{where}: field {key!r} must be a string, got {type(rec[key]).__name__}")
                n += 1
                yield lineno, rec
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
        raise DataFormatError(f"{path}: cannot be read as UTF-8 JSON lines ({e})") from None
    if n == 0:
        raise DataFormatError(f"{path}: empty file, no records")


def load_pairs(path: str | os.PathLike[str], turns: TurnPolicy = "strict") -> list[PreferencePair]:
    """Read a file of HH records and keep the single-turn pairs with one shared prompt.

    The whole file is validated before anything is returned: a bad line raises
    :class:`DataFormatError`, never a silent partial load. Raises it too when no
    single-turn pair is left.
    """
    path = Path(path)
    pairs = []
    for lineno, rec in read_records(path):
        c = split_transcript(rec["chosen"], turns)
        r = split_transcript(rec["rejected"], turns)
        if c is None or r is None or c[0] != r[0]:
            continue
        pairs.append(PreferencePair(c[0], c[1], r[1], source=f"{path.name}:{lineno}"))
    if not pairs:
        raise DataFormatError(
            f"{path}: no single-turn pairs left (turn policy {turns!r}); "
            "each side must be '\\n\\nHuman: ...\\n\\nAssistant: ...' with the same prompt"
        )
    return pairs


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the preference files live: argument > ``$W2S_TASK_DATA_DIR`` > ``$W2S_DATA_DIR`` >
    ``../shared/data``."""
    candidates = [(data_dir, "argument"), (os.environ.get(TASK_DATA_ENV), TASK_DATA_ENV),
                  (os.environ.get(DATA_ENV), DATA_ENV), (REPO_ROOT.parent / "shared" / "data", None)]
    for c, origin in candidates:
        if c:
            p = Path(c).expanduser()
            if p.is_dir():
                return p.resolve()
            if origin:
                raise FileNotFoundError(f"data folder {p} does not exist (from {origin})")
    raise FileNotFoundError(
        "No data folder found. Set W2S_DATA_DIR to a folder holding hh-single-turn/*.jsonl "
        "(see data/README.md), or build one from the hub with "
        "`python -m w2s_helpers build-data`."
    )


def verify_checksums(data_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Compare each known file's sha256 with :data:`KNOWN_SHA256`.

    Returns ``{relative path: "ok" | "differs" | "absent"}``. "differs" is expected for a
    folder built with ``build-data`` (other splits); for ``../shared/data`` it means the
    files changed and numbers will not match the course's.
    """
    root = resolve_data_dir(data_dir)
    status = {}
    for rel, digest in KNOWN_SHA256.items():
        path = root / rel
        status[rel] = "absent" if not path.exists() else ("ok" if file_sha256(path) == digest else "differs")
    return status


def split_path(name: str, data_dir: str | os.PathLike[str] | None = None) -> tuple[Path, TurnPolicy]:
    """The file behind a named split and the turn policy to read it with."""
    if name not in SPLITS:
        raise KeyError(f"unknown split {name!r}; known: {sorted(SPLITS)}")
    root = resolve_data_dir(data_dir)
    rel, turns, _ = SPLITS[name]
    path = root / rel
    if name == "helpful" and not path.exists():
        path, turns = root / HELPFUL_FALLBACK[0], HELPFUL_FALLBACK[1]
    return path, turns


def subset(pairs: Sequence[PreferencePair], n: int | None, seed: int) -> list[PreferencePair]:
    """A seeded random subset of ``n`` pairs (all of them, shuffled, when ``n`` is None)."""
    if n is not None and not 0 < n <= len(pairs):
        raise ValueError(f"asked for {n} pairs, only {len(pairs)} available")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    return [pairs[i] for i in order[: n if n is not None else len(pairs)]]


def load_split(
    name: str, n: int | None = None, seed: int = 0, data_dir: str | os.PathLike[str] | None = None
) -> list[PreferencePair]:
    """Load a named split (see :data:`SPLITS`), optionally a seeded subset of ``n`` pairs.

    ``n=None`` keeps the file order; otherwise the subset for ``(n, seed)`` is the same on
    every machine.
    """
    path, turns = split_path(name, data_dir)
    pairs = load_pairs(path, turns)
    return pairs if n is None else subset(pairs, n, seed)


def pairs_hash(pairs: Iterable[PreferencePair]) -> str:
    """Content hash of a list of pairs (order matters), for cache keys."""
    return content_hash([(p.prompt, p.chosen, p.rejected) for p in pairs])
