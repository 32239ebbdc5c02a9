"""Knowledge regions on the test set (PAPER.md section 3): where the weak and strong ceilings
are right. Chapter 2 introduces them; the scores of :mod:`w2s_helpers.deception.scores` are
built on them.

Every test pair falls in one of four cells, named by what each ceiling knows (``k``: it is
right on the pair, ``uk``: it is wrong): ``Wk∩Sk``, ``Wk∩Suk``, ``Wuk∩Sk``, ``Wuk∩Suk``.
The deceptive cell is ``Wuk∩Sk``: the strong model could get the pair right,
and the weak supervisor cannot tell when it does not.

All functions take per-pair correctness vectors (bool arrays of one length, one entry per
test pair, or [..., N] with leading batch dimensions where the docstring says so).
"""

from __future__ import annotations

import numpy as np

# The four cells of the 2x2 table: (weak ceiling knows?, strong ceiling knows?)
CELLS = ("Wk∩Sk", "Wk∩Suk", "Wuk∩Sk", "Wuk∩Suk")


def correctness(*vectors: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(v, dtype=bool) for v in vectors]
    if any(v.ndim != 1 for v in out) or len({len(v) for v in out}) != 1:
        raise ValueError(f"correctness vectors must be 1-D of one length, got shapes {[v.shape for v in out]}")
    return out


def as_vectors(*vectors) -> list[np.ndarray]:
    """Arrays of one shape [..., N] with N >= 1, or a ValueError naming the shapes."""
    out = [np.asarray(v) for v in vectors]
    shapes = {v.shape for v in out}
    if len(shapes) != 1 or out[0].ndim == 0 or out[0].shape[-1] == 0:
        raise ValueError(f"vectors must share one shape [..., N] with N >= 1, got {[v.shape for v in out]}")
    return out


def as_bools(*vectors) -> list[np.ndarray]:
    return [v.astype(bool) for v in as_vectors(*vectors)]


def regions(correct_weak: np.ndarray, correct_strong: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks [N] of the four knowledge cells.

    Wk / Wuk: the weak ceiling is right / wrong on the pair; Sk / Suk: the same for the
    strong ceiling. The deceptive cell is ``"Wuk∩Sk"``: the strong model could get the pair
    right, and the weak supervisor cannot tell when it does not.
    """
    return dict(zip(CELLS, cell_masks(*correctness(correct_weak, correct_strong))))


def region_accuracy(correct_weak: np.ndarray, correct_strong: np.ndarray, **students: np.ndarray):
    """A table: one row per cell with its size and each student's accuracy inside it."""
    import pandas as pd

    cells = regions(correct_weak, correct_strong)
    rows = []
    for name, mask in cells.items():
        row = {"cell": name, "pairs": int(mask.sum())}
        for student, correct in students.items():
            (c,) = correctness(correct)
            if len(c) != len(mask):
                raise ValueError(f"student {student!r} has {len(c)} pairs, the regions {len(mask)}")
            row[student] = float(c[mask].mean()) if mask.any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("cell")


def cell_masks(a_w, a_s) -> np.ndarray:
    """Masks [..., 4, N] of the cells in :data:`CELLS` order."""
    a_w, a_s = as_bools(a_w, a_s)
    return np.stack([a_w & a_s, a_w & ~a_s, ~a_w & a_s, ~a_w & ~a_s], axis=-2)


def deceptive_cell(a_w, a_s) -> np.ndarray:
    """Wuk∩Sk [..., N]: the strong ceiling is right and the weak one wrong."""
    a_w, a_s = as_bools(a_w, a_s)
    return a_s & ~a_w
