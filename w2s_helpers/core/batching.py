"""Batches: by length (little padding), by epoch (a seeded permutation each), and padding.

    length_batches(lengths, max_rows, max_tokens)   features and activations (few padded tokens)
    sorted_batches(lengths, batch_size)              log-probs of policies (longest first)
    epoch_batches(n, epochs, batch_size, seed)       training steps of reward models and policies
    pad_ids(seqs, pad_id)                            right-padded ids [B, T] and mask [B, T]
"""

from __future__ import annotations

from typing import Sequence

import torch


def length_batches(lengths: Sequence[int], max_rows: int, max_tokens: int, min_fill: float = 0.8) -> list[list[int]]:
    """Indices into ``lengths`` in batches, longest first. A batch closes when it holds
    ``max_rows`` items, when one more would make it ``rows x longest`` > ``max_tokens``, or
    when the next item is shorter than ``min_fill`` x its longest (so no row is more than
    20% padding: the long tail of a length distribution goes in small batches).

    Every item appears once; an item longer than ``max_tokens`` gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches:
            b = batches[-1]
            longest = lengths[b[0]]
            if len(b) < max_rows and (len(b) + 1) * longest <= max_tokens and lengths[i] >= min_fill * longest:
                b.append(i)
                continue
        batches.append([i])
    return batches


def sorted_batches(lengths: torch.Tensor, batch_size: int) -> list[list[int]]:
    """Indices in batches of ``batch_size``, longest first (stable for equal lengths)."""
    order = torch.argsort(lengths, descending=True, stable=True).tolist()
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def epoch_batches(n: int, epochs: int, batch_size: int, seed: int) -> list[list[int]]:
    """Index batches for ``epochs`` passes over n items, a fresh seeded permutation per epoch."""
    g = torch.Generator().manual_seed(seed)
    return [perm[i:i + batch_size] for _ in range(epochs)
            for perm in [torch.randperm(n, generator=g).tolist()] for i in range(0, n, batch_size)]


def pad_ids(seqs: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] and mask [B, T]."""
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask
