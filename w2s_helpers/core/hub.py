"""The Hugging Face hub: is it reachable (fast, bounded answers), and the paper's kind of
splits built from HH-RLHF on it.

Offline machines never wait on the hub: :func:`require_hub` answers within a few seconds
with :class:`HubUnavailableError`, which says what to use instead (local splits, the offline
model rungs). :func:`build_hub_splits` also reads a local folder laid out like the hub
repository, which is how the tests run this path offline.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import socket
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

from w2s_helpers.core.data import SPLITS, split_transcript
from w2s_helpers.core.store import atomic_write_bytes, cache_dir, content_hash


class HubUnavailableError(RuntimeError):
    """The Hugging Face hub cannot be reached (offline machine, firewall, HF_HUB_OFFLINE=1)."""


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
