"""A ledger of the compute the course performs, so a benchmark can set it against the limit.

When ``$W2S_WORK_LOG`` names a file, the heavy loops append one JSON line per call:

    {"kind": "features", "model": "smollm2-135m:...", "flops": 3.1e12, "tokens": 41000,
     "dtype": "bfloat16", "items": [["9f2c...", 212], ...]}

``flops`` counts the matmul work as transformers do it: a forward pass is 2 x (dense,
non-embedding) parameters per token; a training step is 3x its forward (the backward costs
about twice the forward). ``items`` (frozen forwards only) pair a hash of each text or token sequence with its token
count, so
``bench/bench_course.py`` can tell the work a chapter *must* do (each model over each distinct
text once) from work it repeats. Without the variable nothing is written and nothing is
computed.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable, Sequence

from torch import nn

WORK_ENV = "W2S_WORK_LOG"


def enabled() -> bool:
    return bool(os.environ.get(WORK_ENV))


def dense_params(*modules: nn.Module) -> int:
    """Parameters that take part in a matmul per token: all but embedding tables."""
    seen, total = set(), 0
    for module in modules:
        for m in module.modules():
            for name, p in m.named_parameters(recurse=False):
                if id(p) in seen or isinstance(m, nn.Embedding):
                    continue
                seen.add(id(p))
                total += p.numel()
    return total


def item_hashes(items: Iterable[str | Sequence[int]]) -> list[str]:
    """A short hash per text (or token-id sequence)."""
    out = []
    for x in items:
        b = x.encode("utf-8") if isinstance(x, str) else json.dumps(list(map(int, x))).encode()
        out.append(hashlib.sha1(b).hexdigest()[:16])
    return out


def model_name(model: nn.Module, *extra: object) -> str:
    """A label for a model's forward work: its config's name or path, then ``extra`` parts."""
    name = getattr(model.config, "_name_or_path", "") or type(model).__name__
    return ":".join([name, *map(str, extra)])


def dtype_of(module: nn.Module) -> str:
    """The dtype a module computes in, as a name (``"float32"``, ``"bfloat16"``)."""
    return str(next(module.parameters()).dtype).replace("torch.", "")


def record(kind: str, model: str, flops: float, tokens: int, items: Sequence | None = None,
           item_tokens: Sequence[int] | None = None, dtype: str = "float32") -> None:
    """Append one entry to ``$W2S_WORK_LOG`` (a no-op when it is unset).

    dtype: the precision the matmuls ran in (the benchmark divides by that precision's peak).

    items: the texts or token sequences a frozen forward ran over, with ``item_tokens`` the
    tokens each one took (so the work of each item is ``flops / tokens * item_tokens[i]``).
    """
    path = os.environ.get(WORK_ENV)
    if not path:
        return
    entry: dict = {"kind": kind, "model": model, "flops": float(flops), "tokens": int(tokens), "dtype": dtype}
    if items is not None:
        lengths = list(item_tokens) if item_tokens is not None else [len(x) for x in items]
        entry["items"] = [[h, int(n)] for h, n in zip(item_hashes(items), lengths)]
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
