"""Progress bars that show wherever the course runs.

In JupyterLab, ``tqdm.auto`` draws widget bars. A headless run (``make course``, papermill)
has no widgets to draw, so :mod:`w2s_helpers.course.runner` sets ``W2S_PROGRESS=text`` for the
kernel: bars are then plain text on stderr, which the runner echoes to the terminal.

    for batch in progress.bar(batches, desc="features"): ...
"""

from __future__ import annotations

import os
import sys
from typing import Any

PROGRESS_ENV = "W2S_PROGRESS"
TEXT_MININTERVAL_S = 5.0  # headless bars redraw at most this often (a log, not an animation)


def bar(iterable: Any = None, **kwargs: Any):
    """A tqdm bar: widgets in a notebook, text on stderr when ``$W2S_PROGRESS`` is ``text``."""
    if os.environ.get(PROGRESS_ENV) == "text":
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", TEXT_MININTERVAL_S)
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("dynamic_ncols", False)
        kwargs.setdefault("ncols", 100)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
