"""Per-pair results of every training run, saved for chapter 3 (no pickle).

A run is identified by a :class:`RunConfig`; its content hash names the file. Each entry
is a safetensors file holding the test-set vectors (``correct`` [N] uint8, ``delta`` [N]
float32, ``prob`` = sigmoid(delta) [N] float32) with the config as JSON metadata, written
atomically under ``<cache>/results``. :func:`load_runs` reads them back as a table.

A key can never name a stale result: it hashes the run's configuration, including ``fit`` (a
hash of the hyper-parameters that decide the fit, see
:func:`w2s_helpers.rewards.lab.fit_hash`), and :data:`RESULTS_VERSION`. Files written under
another version are ignored by :func:`load_runs`; an unreadable file is recomputed by
:func:`load_or_run` with a warning.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from w2s_helpers.core.store import atomic_write_bytes, cache_dir, content_hash

Role = str  # "weak" (weak ceiling), "strong" (strong ceiling), "student"

# Bump when what a saved run means changes (its fields, the vectors it holds): every key changes
# and runs saved under another version are no longer read. 2: ``fit`` joined the key.
# 3: ``placebo_share`` joined it (the placebo became harmful labels on a random share of D_w2s).
RESULTS_VERSION = "3"


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run's test-set predictions.

    role:      "weak", "strong" (ceilings, trained on ground truth) or "student".
    model:     rung of the trained model.
    weak:      rung of the supervisor whose labels a student learned from ("" for ceilings).
    regime:    "probe", "top_blocks" or "finetune".
    setting:   "none" (ceilings: not a student, so no setting), "no_conflict", "implicit",
               "explicit", or a control: "twin" (a second no-conflict student: the floor),
               "placebo" (harmful labels on a random share of D_w2s).
    alpha:     weight of the explicit-conflict term (0 otherwise).
    helpful_share: fraction of the student's data that are helpful pairs (implicit conflict).
    placebo_share: the placebo's share of D_w2s pairs given harmful labels (0 otherwise).
    weak_n:    ground-truth pairs the weak ceiling was trained on (the capability-gap dial).
    optimizer: how the head was fitted ("lbfgs": converged convex fit; "adam": fixed-step
               Adam, used wherever a conflict sweep must compare like with like).
    seed:      run seed.
    profile:   profile name.
    data_hash: hash of the test pairs the vectors refer to (and of the training data).
    precision: dtype the model computed in (``lab.precision``): runs in bf16 and in fp32 are
               different runs, never read for one another.
    fit:       hash of the hyper-parameters that decide the fit and of the fitting code's version
               (``lab.fit_hash``): a run trained with other settings is another run.
    mitigation: how the student's training data were made when not the plain weak-to-strong way
               (chapter 5: "chain via <rung>", "filter oracle t=0.75", ...); "" for chapters 1-4's
               runs. An empty mitigation is left out of the key, so those runs keep their keys.
    """

    role: Role
    model: str
    weak: str = ""
    regime: str = "probe"
    setting: str = "none"
    alpha: float = 0.0
    helpful_share: float = 0.0
    placebo_share: float = 0.0
    weak_n: int = 0
    optimizer: str = "lbfgs"
    seed: int = 0
    profile: str = ""
    data_hash: str = ""
    precision: str = ""
    fit: str = ""
    mitigation: str = ""

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        if not fields["mitigation"]:
            del fields["mitigation"]
        return content_hash(fields, RESULTS_VERSION, length=20)


def save_run(config: RunConfig, delta: np.ndarray, correct: np.ndarray) -> Path:
    """Store one run's test vectors: delta [N] margins and correct [N] booleans."""
    import torch
    from safetensors.torch import save

    delta = np.asarray(delta, dtype=np.float32)
    correct = np.asarray(correct, dtype=bool)
    if delta.ndim != 1 or delta.shape != correct.shape:
        raise ValueError(f"delta and correct must be 1-D of one length, got {delta.shape} and {correct.shape}")
    if not np.isfinite(delta).all():
        raise ValueError(f"{config.role} run of {config.model}: {int((~np.isfinite(delta)).sum())} of {len(delta)} "
                         "margins are not finite, so it is not saved (a fit still queued as a job gives NaN: call "
                         "lab.require_trained() before saving)")
    tensors = {
        "delta": torch.from_numpy(delta.copy()),
        "prob": torch.sigmoid(torch.from_numpy(delta.copy())),
        "correct": torch.from_numpy(correct.astype(np.uint8)),
    }
    path = cache_dir("results") / f"{config.key()}.safetensors"
    meta = {"config": json.dumps(dataclasses.asdict(config)), "version": RESULTS_VERSION}
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def load_run(config: RunConfig) -> dict[str, np.ndarray] | None:
    """The saved vectors of a run (``delta``, ``prob``, ``correct``), or None if absent."""
    path = cache_dir("results") / f"{config.key()}.safetensors"
    if not path.exists():
        return None
    return _read(path)[1]


def load_or_run(config: RunConfig, compute: Callable[[], np.ndarray],
                pending_ok: bool = False) -> dict[str, np.ndarray]:
    """The saved vectors of ``config``; if there are none, ``compute()`` the run's test
    margins delta [N], save them (correct = delta > 0) and return them. A rerun is free.
    A saved file that cannot be read (truncated, corrupted) is computed again, with a warning.

    ``pending_ok`` (pass ``lab.collecting``: inside a reward lab's ``queue()`` block): margins
    that are not finite, a queued fit's, are returned unsaved (``correct`` all False) instead of
    refused, so the block can queue every fit before the first is trained."""
    try:
        got = load_run(config)
    except Exception as e:
        import warnings

        warnings.warn(f"saved run {config.key()}.safetensors is unreadable ({type(e).__name__}); computing it again")
        got = None
    if got is None:
        delta = np.asarray(compute(), dtype=np.float32)
        if pending_ok and not np.isfinite(delta).all():
            return {"delta": delta, "prob": 1 / (1 + np.exp(-delta)), "correct": np.zeros(len(delta), dtype=bool)}
        save_run(config, delta, delta > 0)
        got = load_run(config)
    return got


def _read(path: Path) -> tuple[RunConfig, dict[str, np.ndarray]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
        if meta.get("version") != RESULTS_VERSION:
            raise StaleRunError(f"{path.name} was saved under results version {meta.get('version', '1')}, "
                                f"not {RESULTS_VERSION}")
        config = RunConfig(**json.loads(meta["config"]))
        arrays = {k: f.get_tensor(k) for k in f.keys()}
    arrays["correct"] = arrays["correct"].astype(bool)
    return config, arrays


class StaleRunError(ValueError):
    """A saved run written under another :data:`RESULTS_VERSION`."""


def iter_runs(root: Path | None = None) -> Iterator[tuple[RunConfig, dict[str, np.ndarray]]]:
    """Every saved run of this :data:`RESULTS_VERSION` (older files are skipped silently,
    unreadable ones with a warning)."""
    import warnings

    for path in sorted((root or cache_dir("results")).glob("*.safetensors")):
        try:
            yield _read(path)
        except StaleRunError:
            continue
        except Exception as e:
            warnings.warn(f"skipping unreadable result {path.name}: {type(e).__name__}: {e}")


def load_runs(**where) -> "pandas.DataFrame":  # noqa: F821
    """A table of saved runs matching ``where`` (config field = value), one row per run,
    with the config fields, the accuracy and the vectors (columns ``correct``, ``delta``).

    Chapter 5's mitigated runs are left out unless ``where`` names a ``mitigation`` (None: any)."""
    import pandas as pd

    where.setdefault("mitigation", "")
    if where["mitigation"] is None:
        del where["mitigation"]
    rows = []
    for config, arrays in iter_runs():
        fields = dataclasses.asdict(config)
        if all(fields.get(k) == v for k, v in where.items()):
            rows.append({**fields, "acc": float(arrays["correct"].mean()), **arrays})
    return pd.DataFrame(rows)


def pick(frame: "pandas.DataFrame", what: str = "run", hint: str = "", **where) -> "pandas.Series":  # noqa: F821
    """The first row of ``frame`` (a :func:`load_runs` table) whose columns equal ``where`` (floats
    compared with ``np.isclose``). Raises ``LookupError`` naming ``what``, ``where`` and ``hint``
    (what to run to make it) if none does."""
    mask = np.ones(len(frame), dtype=bool)
    for col, value in where.items():
        if col not in frame:
            mask &= False
        elif isinstance(value, float):
            mask &= np.isclose(frame[col].to_numpy(dtype=float), value)
        else:
            mask &= (frame[col] == value).to_numpy()
    if not mask.any():
        shown = ", ".join(f"{k}={v!r}" for k, v in where.items())
        raise LookupError(f"no saved {what} with {shown}" + (f": {hint}" if hint else ""))
    return frame[mask].iloc[0]


def summary_path(name: str, key: dict) -> Path:
    """Where a chapter's summary table for ``key`` lives (``<cache>/results/summaries/``)."""
    return cache_dir("results") / "summaries" / f"{name}-{content_hash(key, RESULTS_VERSION, length=20)}.json"


def save_summary(name: str, key: dict, rows: list[dict]) -> Path:
    """Save a table a chapter computed from its runs (for example chapter 3's claims), so that a
    later chapter can read it without recomputing: JSON (strings, numbers), written atomically.

    key:  what the table depends on (profile, precision, data_hash, regime, fit, task, ...).
    rows: one dict per row, JSON-serialisable values.
    """
    payload = {"name": name, "key": key, "version": RESULTS_VERSION, "rows": rows}
    return atomic_write_bytes(summary_path(name, key), (json.dumps(payload, indent=1, default=float) + "\n").encode())


def load_summary(name: str, key: dict) -> list[dict] | None:
    """The rows saved by :func:`save_summary` for ``key``, or None if there are none."""
    path = summary_path(name, key)
    if not path.exists():
        return None
    payload = json.loads(path.read_text(encoding="utf-8"))
    same = payload.get("key") == json.loads(json.dumps(key, default=float))   # as saved: tuples become lists
    return payload["rows"] if same else None
