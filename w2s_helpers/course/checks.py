"""Exercise checks: compare a learner's function with the reference on small inputs.

Each check prints one line on success and raises ``AssertionError`` with the first
failing case otherwise, so a wrong answer cannot pass silently.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch


def compare(
    learner: Callable[..., Any], reference: Callable[..., Any], cases: Iterable[tuple], name: str,
    atol: float = 1e-5,
) -> None:
    """Run both functions on every case (a tuple of positional args) and compare outputs."""
    n = 0
    for n, args in enumerate(cases, start=1):
        got, want = learner(*args), reference(*args)
        got_t, want_t = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
        if got_t.shape != want_t.shape:
            raise AssertionError(f"{name}, case {n}: shape {tuple(got_t.shape)}, expected {tuple(want_t.shape)}")
        if not torch.allclose(got_t, want_t, atol=atol, rtol=1e-4, equal_nan=True):
            raise AssertionError(f"{name}, case {n}: got {got_t.flatten()[:4].tolist()}, "
                                 f"expected {want_t.flatten()[:4].tolist()}")
    print(f"PASS {name}: {n} cases match the reference")


def pairwise_cases(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Small (delta, label) inputs for pairwise-loss exercises: hard and soft labels, extremes."""
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.tensor([0.0]), torch.tensor([1.0])),
        (torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 1.0])),
        (torch.randn(16, generator=g) * 3, torch.rand(16, generator=g)),  # soft labels
        (torch.tensor([30.0, -30.0]), torch.tensor([0.0, 1.0])),  # confident and wrong: no overflow
    ]
