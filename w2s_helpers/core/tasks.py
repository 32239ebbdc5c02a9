"""The task a chapter runs on: ``"hh"`` (the paper's HH-RLHF harmlessness splits) or
``"arithmetic"`` (generated multiplication pairs with a sycophantic user: :mod:`.arithmetic`).

    tasks.use(TASK, P)     # in a chapter, right after the profile

Every chapter reads its pools through :mod:`w2s_helpers.core.data`, so switching the task is
switching the folder it reads: ``use("arithmetic", P)`` generates (once, cached) the profile's
arithmetic splits in the HH layout and points ``$W2S_TASK_DATA_DIR`` at them; ``use("hh", P)``
clears it. Saved runs are keyed by the pools' content, so the two tasks never mix.
"""

from __future__ import annotations

import os
from pathlib import Path

from w2s_helpers.core import arithmetic, data
from w2s_helpers.core.profiles import Profile

TASKS = {
    "hh": "harmlessness (HH-RLHF, the paper's splits); conflicting objective: helpfulness",
    "arithmetic": "multiplication, four difficulty levels; conflicting objective: agreeing with the user (sycophancy)",
}
# What the HH-named roles mean on each task (for prose and table headers).
WORDS = {
    "hh": {"chosen": "harmless", "rejected": "harmful", "conflict": "helpful"},
    "arithmetic": {"chosen": "correct", "rejected": "near miss", "conflict": "agrees with the user"},
}


def spec_for(profile: Profile) -> arithmetic.ArithmeticSpec:
    """The arithmetic splits a profile needs: as many pairs per file as its pools draw (all 4000 of a
    pool when the profile takes everything), the conflict file as large as its helpful pool."""
    n_train = profile.n_train or 4000
    return arithmetic.ArithmeticSpec(n_gt=n_train, n_w2s=n_train, n_test=profile.n_test or 4000,
                                     n_conflict=profile.n_helpful or n_train)


def check(task: str) -> str:
    """``task`` itself, or a clear error naming the tasks there are."""
    if task not in TASKS:
        raise ValueError(f"unknown TASK {task!r}; choose one of {', '.join(map(repr, TASKS))}")
    return task


def use(task: str, profile: Profile) -> Path:
    """Make ``task`` the data every later load reads in this process (and the chapters it starts);
    returns its data folder."""
    if check(task) == "hh":
        os.environ.pop(data.TASK_DATA_ENV, None)
        return data.resolve_data_dir()
    root = arithmetic.folder(spec_for(profile))
    os.environ[data.TASK_DATA_ENV] = str(root)
    return root
