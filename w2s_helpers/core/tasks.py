"""The task a chapter runs on: ``"hh"`` (the paper's HH-RLHF harmlessness splits) or
``"arithmetic"`` (generated multiplication pairs with a sycophantic user: :mod:`.arithmetic`).

    DATA_DIR = tasks.use(TASK, P, DATA_DIR)     # in a chapter, right after the profile

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


def use(task: str, profile: Profile, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Make ``task`` the data every later load reads in this process (and the chapters it starts);
    returns its data folder, after checking it holds enough pairs for ``profile``
    (:func:`check_sizes`).

    ``data_dir`` (HH task only): another folder in the HH layout, for example other HH-RLHF subsets
    or a user's own pairs. It becomes ``$W2S_DATA_DIR``, so chapters started from this one read it
    too; saved runs are keyed by the pools' content, so two folders never mix."""
    if check(task) == "hh":
        os.environ.pop(data.TASK_DATA_ENV, None)
        if data_dir is not None:
            os.environ[data.DATA_ENV] = str(data.resolve_data_dir(data_dir))
        root = data.resolve_data_dir()
        check_sizes(profile, root)
        return root
    if data_dir is not None:
        raise ValueError(f"DATA_DIR={str(data_dir)!r} replaces the HH splits (TASK='hh'); the {task!r} task "
                         "generates its own data")
    root = arithmetic.folder(spec_for(profile))
    os.environ[data.TASK_DATA_ENV] = str(root)
    return root


class DataSizeError(ValueError):
    """A data folder holds fewer pairs than the profile draws."""


def check_sizes(profile: Profile, root: Path) -> dict[str, int]:
    """{split: pairs in ``root``}; raises :class:`DataSizeError` naming the file, what it holds and
    what the profile asks, with the way to use what there is (``$W2S_SIZES`` or ``--sizes``)."""
    want = {"harmless_gt": profile.n_train, "harmless_w2s": profile.n_train, "harmless_test": profile.n_test}
    have = {name: len(data.load_split(name, data_dir=root)) for name in want}
    short = {name: (have[name], n) for name, n in want.items() if n is not None and have[name] < n}
    if short:
        lines = "; ".join(f"{data.split_path(name, root)[0].name} holds {h} single-turn pairs, profile "
                          f"{profile.name!r} draws {n}" for name, (h, n) in short.items())
        fit_train = min(have["harmless_gt"], have["harmless_w2s"])
        raise DataSizeError(
            f"data folder {root}: {lines}. Use a folder with more pairs, or draw what there is: set "
            f"W2S_SIZES='n_train={min(fit_train, profile.n_train or fit_train)},"
            f"n_test={min(have['harmless_test'], profile.n_test or have['harmless_test'])}' before starting "
            "Jupyter, or pass --sizes with the same value to `python -m w2s_helpers run`.")
    return have
