"""Knowledge regions on the test set (PAPER.md section 3); chapter 3 builds the scores on them.

All functions take per-pair correctness vectors (bool arrays of one length, one entry per
test pair) and are vectorised.
"""

from __future__ import annotations

import numpy as np

# The four cells of the 2x2 table: (weak ceiling knows?, strong ceiling knows?)
CELLS = ("Wk∩Sk", "Wk∩Suk", "Wuk∩Sk", "Wuk∩Suk")


def _check(*vectors: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(v, dtype=bool) for v in vectors]
    if any(v.ndim != 1 for v in out) or len({len(v) for v in out}) != 1:
        raise ValueError(f"correctness vectors must be 1-D of one length, got shapes {[v.shape for v in out]}")
    return out


def regions(correct_weak: np.ndarray, correct_strong: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks [N] of the four knowledge cells.

    Wk / Wuk: the weak ceiling is right / wrong on the pair; Sk / Suk: the same for the
    strong ceiling. The deceptive cell is ``"Wuk∩Sk"``: the strong model could get the pair
    right, and the weak supervisor cannot tell when it does not.
    """
    w, s = _check(correct_weak, correct_strong)
    return {"Wk∩Sk": w & s, "Wk∩Suk": w & ~s, "Wuk∩Sk": ~w & s, "Wuk∩Suk": ~w & ~s}


def region_accuracy(correct_weak: np.ndarray, correct_strong: np.ndarray, **students: np.ndarray):
    """A table: one row per cell with its size and each student's accuracy inside it."""
    import pandas as pd

    cells = regions(correct_weak, correct_strong)
    rows = []
    for name, mask in cells.items():
        row = {"cell": name, "pairs": int(mask.sum())}
        for student, correct in students.items():
            (c,) = _check(correct)
            if len(c) != len(mask):
                raise ValueError(f"student {student!r} has {len(c)} pairs, the regions {len(mask)}")
            row[student] = float(c[mask].mean()) if mask.any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("cell")


def flip_rates(correct_weak: np.ndarray, correct_strong: np.ndarray, before: np.ndarray, after: np.ndarray):
    """Conflict tax per cell: the share of pairs a student got right *before* (no conflict)
    that it gets wrong *after* (with conflict). One row per cell: pairs, right before, flipped, rate.
    """
    import pandas as pd

    before, after = _check(before, after)
    rows = []
    for name, mask in regions(correct_weak, correct_strong).items():
        if len(mask) != len(before):
            raise ValueError(f"students have {len(before)} pairs, the regions {len(mask)}")
        right = before & mask
        flipped = right & ~after
        rows.append({"cell": name, "pairs": int(mask.sum()), "right before": int(right.sum()),
                     "flipped": int(flipped.sum()),
                     "flip rate": float(flipped.sum() / right.sum()) if right.any() else float("nan")})
    return pd.DataFrame(rows).set_index("cell")
