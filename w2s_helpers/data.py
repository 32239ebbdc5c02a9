"""Preference pairs from Anthropic HH-RLHF: loading, validation, subsets, and the hub path.

Record format (one JSON object per line, ``.jsonl`` or ``.jsonl.gz``)::

    {"chosen": "\\n\\nHuman: <prompt>\\n\\nAssistant: <response>", "rejected": "..."}

``chosen`` is the harmless (or more helpful) side. A :class:`PreferencePair` keeps the
prompt once and the two responses apart, so later chapters can render them for a reward
model (whole transcript) or a policy (prompt, then response).

Where the data lives: ``data_dir`` argument > ``W2S_DATA_DIR`` environment variable >
``../shared/data`` beside the repository, if present. Users with internet can build the
same kind of files from the hub with :func:`build_hub_splits`.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence
from urllib.parse import urlparse

from .store import atomic_write_bytes, cache_dir, content_hash, file_sha256

DATA_ENV = "W2S_DATA_DIR"
HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
REPO_ROOT = Path(__file__).resolve().parent.parent

TurnPolicy = Literal["strict", "first"]


class DataFormatError(ValueError):
    """Malformed preference data. The message starts with ``file:line``."""


class HubUnavailableError(RuntimeError):
    """The Hugging Face hub cannot be reached (offline machine, firewall, HF_HUB_OFFLINE=1)."""


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
    """Where the preference files live: argument > ``$W2S_DATA_DIR`` > ``../shared/data``."""
    candidates = [data_dir, os.environ.get(DATA_ENV), REPO_ROOT.parent / "shared" / "data"]
    for c in candidates:
        if c:
            p = Path(c).expanduser()
            if p.is_dir():
                return p.resolve()
            if c is not candidates[-1]:
                raise FileNotFoundError(f"data folder {p} does not exist (from {'argument' if c is data_dir else DATA_ENV})")
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


# --------------------------------------------------------------------------- hub path

HF_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_offline_flag() -> bool:
    """True when the environment asks the Hugging Face libraries to stay offline."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in HF_OFFLINE_VARS)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can a TCP connection to the hub be opened within ``timeout`` seconds?

    Answers at once when an offline flag is set; otherwise the DNS look-up and the
    connection together are bounded by ``timeout`` (a stuck resolver cannot hang us).
    """
    if hub_offline_flag():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)

    def probe() -> bool:
        with socket.create_connection((host, port), timeout=timeout):
            return True

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(probe).result(timeout=timeout)
    except Exception:
        return False
    finally:
        pool.shutdown(wait=False)


def require_hub(what: str, timeout: float = 3.0) -> None:
    """Raise :class:`HubUnavailableError` within ``timeout`` seconds if the hub is unreachable."""
    if not hub_reachable(timeout):
        reason = "an offline flag (HF_HUB_OFFLINE) is set" if hub_offline_flag() else f"no connection within {timeout:.0f} s"
        raise HubUnavailableError(
            f"Cannot reach the Hugging Face hub to get {what}: {reason}. "
            "Offline, use local files instead: set W2S_DATA_DIR to a folder with "
            "hh-single-turn/*.jsonl (e.g. ../shared/data) and the offline model rungs "
            "(`python -m w2s_helpers fetch`)."
        )


def make_paper_splits(
    harmless: Iterable[dict[str, Any]],
    helpful: Iterable[dict[str, Any]],
    n_per_split: int = 4000,
    n_helpful: int = 4000,
    seed: int = 0,
) -> dict[str, list[dict[str, str]]]:
    """Build the paper's kind of splits from raw HH-RLHF records (pure function).

    Keeps strictly single-turn pairs with one shared prompt and non-identical responses,
    drops repeated prompts (first occurrence wins), shuffles with ``seed`` and cuts three
    disjoint harmless splits (gt, w2s, test) of ``n_per_split`` plus ``n_helpful``
    helpfulness pairs whose prompts appear in none of them.

    Returns ``{"harmless_gt": [...], "harmless_w2s": [...], "harmless_test": [...],
    "helpful": [...]}`` of ``{"chosen", "rejected"}`` records in HH format.
    """

    def single_turn_unique(records: Iterable[dict[str, Any]], taken: set[str]) -> list[dict[str, str]]:
        out = []
        for rec in records:
            c, r = split_transcript(rec["chosen"], "strict"), split_transcript(rec["rejected"], "strict")
            if c is None or r is None or c[0] != r[0] or c[1] == r[1] or c[0] in taken:
                continue
            taken.add(c[0])
            out.append({"chosen": rec["chosen"], "rejected": rec["rejected"]})
        random.Random(seed).shuffle(out)
        return out

    taken: set[str] = set()
    harm = single_turn_unique(harmless, taken)
    if len(harm) < 3 * n_per_split:
        raise ValueError(f"only {len(harm)} unique single-turn harmless pairs; need {3 * n_per_split}")
    helpful_pairs = single_turn_unique(helpful, taken)
    if len(helpful_pairs) < n_helpful:
        raise ValueError(f"only {len(helpful_pairs)} unique single-turn helpful pairs; need {n_helpful}")
    names = ("harmless_gt", "harmless_w2s", "harmless_test")
    splits = {name: harm[i * n_per_split:(i + 1) * n_per_split] for i, name in enumerate(names)}
    splits["helpful"] = helpful_pairs[:n_helpful]
    return splits


def write_splits(splits: dict[str, list[dict[str, str]]], out_dir: str | os.PathLike[str]) -> Path:
    """Write splits as JSON lines in the layout :data:`SPLITS` expects (atomic per file)."""
    out_dir = Path(out_dir)
    for name, records in splits.items():
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        atomic_write_bytes(out_dir / SPLITS[name][0], payload)
    return out_dir


def build_hub_splits(
    out_dir: str | os.PathLike[str] | None = None,
    source: str = "Anthropic/hh-rlhf",
    n_per_split: int = 4000,
    n_helpful: int = 4000,
    seed: int = 0,
) -> Path:
    """Download HH-RLHF, build the paper's kind of splits, write them, return the folder.

    ``source`` is a hub dataset id, or a local folder laid out like the hub repository
    (``harmless-base/train.jsonl.gz``, ``helpful-base/train.jsonl.gz``), which is how the
    tests exercise this path offline. The result is cached under the course cache keyed
    by the arguments; point ``W2S_DATA_DIR`` at the returned folder.
    """
    import datasets  # heavy import, only on this path

    out = Path(out_dir) if out_dir else cache_dir("data") / f"hh-{content_hash(source, n_per_split, n_helpful, seed)}"
    if all((out / SPLITS[s][0]).exists() for s in SPLITS):
        return out
    local = Path(source).is_dir()
    if not local:
        require_hub(f"the dataset {source}")

    def load(subdir: str):
        if local:
            files = sorted(str(p) for p in (Path(source) / subdir).glob("train.jsonl*"))
            if not files:
                raise FileNotFoundError(f"{Path(source) / subdir}: no train.jsonl(.gz)")
            return datasets.load_dataset("json", data_files=files, split="train")
        return datasets.load_dataset(source, data_dir=subdir, split="train")

    splits = make_paper_splits(load("harmless-base"), load("helpful-base"), n_per_split, n_helpful, seed)
    return write_splits(splits, out)
