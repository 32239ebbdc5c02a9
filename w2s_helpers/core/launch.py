"""What the jobs of both scenarios share: their files, and the processes of an ``accelerate launch``.

A chapter at a profile with ``finetune_jobs`` (``paper``) queues what it cannot train in a notebook
cell as *jobs*, one JSON line each, in a jobs file of the course cache; ``python -m w2s_helpers
train --jobs FILE`` (under ``accelerate launch``) trains them and saves each result under the job's
key, and the chapter, run again, reads them. Reward models (:mod:`w2s_helpers.rewards.jobs`) and
policies (:mod:`w2s_helpers.policies.jobs`) are queued this way; this module holds the parts they share:

- the pools file: the pairs that a job's indices refer to, written once under their hash;
- jobs files: append a job once per key (atomic rewrite), read them back with errors that name the
  file and the line;
- checkpoints: the newest complete ``checkpoint-<step>`` folder of an interrupted run;
- the launch: accelerate's process state (gloo on a CPU, a long barrier timeout) and the split of a
  global batch over processes and accumulation steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch

from w2s_helpers.core import models, store
from w2s_helpers.core.data import PreferencePair, pairs_hash

J = TypeVar("J")


def rung_spec(rung: str | models.Rung) -> Any:
    """What a job stores of a rung: its name when the registry knows it, else its fields."""
    if isinstance(rung, str):
        return rung
    if models.REGISTRY.get(rung.name) == rung:
        return rung.name
    return json.loads(json.dumps(dataclasses.asdict(rung)))     # as a jobs file gives it back (lists)


def rung_from_spec(spec: Any) -> str | models.Rung:
    """A stored rung back: its name, or the Rung rebuilt from its fields."""
    if isinstance(spec, str):
        return spec
    return models.Rung(**{k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                          for k, v in spec.items()})


class PendingJobs(RuntimeError):
    """Runs are queued as jobs and not trained yet (a profile with ``finetune_jobs``)."""


class Queueing:
    """``with lab.queue():`` for a lab that queues jobs (both scenarios' labs). The lab keeps
    ``collecting``, ``queued`` (keys) and ``waiting`` (runs whose inputs need a queued run), and says
    in ``pending_message()`` what is queued and the command that trains it; ``pending_error`` is the
    exception its chapters catch."""

    pending_error: type[PendingJobs] = PendingJobs

    @contextlib.contextmanager
    def queue(self) -> Iterator["Queueing"]:
        """A block that queues every missing run (a jobs profile) and ends with :meth:`require_trained`.
        Inside it a queued run's results are placeholders, so later runs that depend on them count as
        waiting; elsewhere the block changes nothing."""
        self.collecting, self.queued, self.waiting = True, set(), 0    # a re-run cell counts afresh
        try:
            yield self
        finally:
            self.collecting = False
        self.require_trained()

    def require_trained(self) -> None:
        """Raise :attr:`pending_error`, with the command that trains them, when runs of this lab are
        queued; nothing otherwise. Call it after a chapter's runs and before it reads their results."""
        if self.queued or self.waiting:
            raise self.pending_error(self.pending_message())

    def pending_message(self) -> str:
        raise NotImplementedError


def jobs_dir() -> Path:
    return store.cache_dir("jobs")

def pools_path(data_hash: str) -> Path:
    return jobs_dir() / f"pools-{data_hash}.json"


def write_pools(pools: dict[str, list[PreferencePair]]) -> str:
    """Write the pools once (atomically) under their hash; return the hash jobs refer to."""
    h = pairs_hash([p for name in sorted(pools) for p in pools[name]])
    path = pools_path(h)
    if not path.exists():
        blob = {name: [[p.prompt, p.chosen, p.rejected, p.source] for p in pairs] for name, pairs in pools.items()}
        store.atomic_write_bytes(path, json.dumps(blob, ensure_ascii=False).encode("utf-8"))
    return h


def read_pools(data_hash: str) -> dict[str, list[PreferencePair]]:
    """The pools a job's indices refer to; checks their hash."""
    path = pools_path(data_hash)
    if not path.exists():
        raise FileNotFoundError(f"{path}: the pools of these jobs are missing (the chapter that queued them "
                                "writes them; run it again with the same cache directory)")
    blob = json.loads(path.read_text(encoding="utf-8"))
    pools = {name: [PreferencePair(*row) for row in rows] for name, rows in blob.items()}
    if pairs_hash([p for name in sorted(pools) for p in pools[name]]) != data_hash:
        raise ValueError(f"{path}: its pairs do not hash to {data_hash} (the file was changed)")
    return pools

def append_line(path: str | Path, record: dict, key: Callable[[dict], str]) -> bool:
    """Add ``record`` (one JSON line) to a jobs file unless a line with the same ``key`` is there;
    returns whether it was added. The file is rewritten atomically, so an interrupted chapter never
    leaves half a line."""
    path = Path(path)
    have = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if path.exists() else []
    if any(key(d) == key(record) for d in have):
        return False
    lines = [json.dumps(d) for d in have + [record]]
    store.atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return True


def read_lines(path: str | Path, parse: Callable[[dict], J], what: str) -> list[J]:
    """Every line of a JSON-lines file through ``parse``, with a clear error naming the file and the
    line of a bad one (``what``: what a line should be, for the message)."""
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(parse(json.loads(line)))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not {what} ({type(e).__name__}: {e})") from None
    return out


def kind_of(path: str | Path) -> str:
    """What a jobs file queues: "policy" when its lines say so, else "reward" (every line of a file is
    of one kind: each scenario writes its own files)."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                return str(json.loads(line).get("kind", "reward"))
            except (ValueError, AttributeError):
                return "reward"          # the reader of that kind names the bad line
    return "reward"


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-<step>`` folder (one with ``trainer_state.json``, which the
    trainer writes after the weights and optimiser state), or None."""
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()
            and p.name.split("-")[-1].isdigit()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)

def per_device_batch(batch_size: int, processes: int, grad_accum: int) -> int:
    """Pairs per process and step that make a global batch of ``batch_size`` per update."""
    per, rest = divmod(batch_size, processes * grad_accum)
    if rest or per == 0:
        raise ValueError(f"a global batch of {batch_size} pairs does not split over {processes} processes x "
                         f"{grad_accum} accumulation steps; choose a batch_size divisible by {processes * grad_accum}")
    return per


# How long a process of a launch waits at a barrier (torch's default is 10 minutes with NCCL): rank 0
# scores every pool of a job alone while the others wait, which a 7B model on a large pool may exceed.
BARRIER_TIMEOUT_MIN = 120


def process_state(cpu: bool | None = None):
    """accelerate's view of this process (rank, count, device). Without a GPU (or with ``cpu``) the
    processes of a launch run on the CPU and talk through gloo (accelerate needs ``cpu=True`` for that).
    The first call of a launch sets up the process group, with :data:`BARRIER_TIMEOUT_MIN`."""
    from datetime import timedelta

    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available() if cpu is None else cpu,
                        timeout=timedelta(minutes=BARRIER_TIMEOUT_MIN))
