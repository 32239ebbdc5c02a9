"""Pairs as a policy reads them: prompt and response tokens, the way trl's DPOTrainer tokenises.

The prompt is ``"\\n\\nHuman: ...\\n\\nAssistant:"``; the completion is what
``tokenize(prompt + response)`` adds after the common prefix, plus EOS. N pairs become 2N
sequences (rows 0..N-1 prompt + chosen, rows N..2N-1 prompt + rejected), held three ways:

    Encoded   token ids and where each response starts
    Tokens    Encoded for a whole model (padded into batches on the fly; nothing cached)
    Cached    Encoded with the cached inputs of block L-k (a top-block policy)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from w2s_helpers.core.batching import pad_ids
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.core.decoder import Activations, activations_of_ids, cached_activations
from w2s_helpers.core.store import content_hash

POLICY_VERSION = "1"   # part of the activation cache key of policies (:func:`cached`)


def prompt_text(pair: PreferencePair) -> str:
    """The prompt as the policy sees it (HH format, up to the Assistant marker)."""
    return f"\n\nHuman: {pair.prompt}\n\nAssistant:"


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Encoded:
    """Token ids of N pairs as 2N sequences: rows 0..N-1 prompt + chosen, rows N..2N-1 prompt +
    rejected (the data's own order: chosen = ground truth).

    ids:    2N lists of token ids (prompt, then response)
    starts: [2N] index of each sequence's first response token (>= 1)
    """

    ids: list[list[int]]
    starts: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids) // 2

    @property
    def lengths(self) -> torch.Tensor:
        """[2N] response tokens per sequence."""
        return torch.tensor([len(s) for s in self.ids]) - self.starts

    def take(self, idx: Sequence[int]) -> "Encoded":
        """Pairs ``idx`` (both sequences of each), in that order."""
        n = len(self)
        rows = list(idx) + [n + i for i in idx]
        return Encoded([self.ids[r] for r in rows], self.starts[rows])

    @staticmethod
    def cat(parts: Sequence["Encoded"]) -> "Encoded":
        firsts = [e.ids[: len(e)] for e in parts]
        seconds = [e.ids[len(e):] for e in parts]
        starts = [torch.cat([e.starts[: len(e)] for e in parts]), torch.cat([e.starts[len(e):] for e in parts])]
        return Encoded(sum(firsts, []) + sum(seconds, []), torch.cat(starts))


def encode_pairs(tokenizer, pairs: Sequence[PreferencePair], max_prompt: int | None = None,
                 max_response: int | None = None) -> Encoded:
    """Tokenise pairs as trl's DPOTrainer does; keep the last ``max_prompt`` prompt tokens and the
    first ``max_response`` response tokens (a cut response loses its EOS)."""
    if not pairs:
        raise ValueError("no pairs to encode")
    eos = tokenizer.eos_token_id
    seqs: list[list[int]] = []
    starts: list[int] = []
    for side in ("chosen", "rejected"):
        for p in pairs:
            prompt = tokenizer(prompt_text(p))["input_ids"]
            full = tokenizer(prompt_text(p) + " " + getattr(p, side))["input_ids"]
            cut = common_prefix(prompt, full)
            head, resp = prompt[:cut], full[cut:] + [eos]
            if max_prompt is not None:
                head = head[-max_prompt:]
            if max_response is not None:
                resp = resp[:max_response]
            if not head or not resp:
                raise ValueError(f"pair {p.source or p.prompt[:40]!r} has an empty prompt or response after tokenising")
            seqs.append(head + resp)
            starts.append(len(head))
    return Encoded(seqs, torch.tensor(starts))


def pair_lengths(enc: Encoded) -> torch.Tensor:
    """[N, 2] response tokens of (chosen, rejected)."""
    n, lens = len(enc), enc.lengths
    return torch.stack([lens[:n], lens[n:]], 1)


@dataclass(frozen=True)
class Tokens:
    """Encoded pairs as token ids only (for :class:`WholePolicy`; nothing is cached)."""

    enc: Encoded
    pad_id: int

    def __len__(self) -> int:
        return len(self.enc)

    @property
    def lengths(self) -> torch.Tensor:
        return torch.tensor([len(s) for s in self.enc.ids])

    def batch(self, rows: Sequence[int], device: str = "cpu"):
        """(x [B, T], mask [B, T], ids, starts) of sequences ``rows`` (0..2N-1)."""
        ids = [self.enc.ids[r] for r in rows]
        x, mask = pad_ids(ids, self.pad_id)
        return x.to(device), mask.to(device), ids, self.enc.starts[list(rows)]

    def take(self, idx: Sequence[int]) -> "Tokens":
        return Tokens(self.enc.take(idx), self.pad_id)

    @staticmethod
    def cat(parts: Sequence["Tokens"]) -> "Tokens":
        return Tokens(Encoded.cat([p.enc for p in parts]), parts[0].pad_id)


@dataclass(frozen=True)
class Cached:
    """Encoded pairs with the cached inputs of block L-k of all 2N sequences."""

    enc: Encoded
    acts: Activations

    def __len__(self) -> int:
        return len(self.enc)

    @property
    def lengths(self) -> torch.Tensor:
        """[2N] tokens per sequence."""
        return self.acts.lengths

    def batch(self, rows: Sequence[int], device: str = "cpu"):
        """(h [B, T, H], mask [B, T], ids, starts) of sequences ``rows`` (0..2N-1)."""
        h, mask = self.acts.batch(rows)
        return h.to(device), mask.to(device), [self.enc.ids[r] for r in rows], self.enc.starts[list(rows)]

    def take(self, idx: Sequence[int]) -> "Cached":
        n = len(self)
        return Cached(self.enc.take(idx), self.acts.take(list(idx) + [n + i for i in idx]))

    @staticmethod
    def cat(parts: Sequence["Cached"]) -> "Cached":
        n = [len(p) for p in parts]
        firsts = [p.acts.take(range(m)) for p, m in zip(parts, n)]
        seconds = [p.acts.take(range(m, 2 * m)) for p, m in zip(parts, n)]
        return Cached(Encoded.cat([p.enc for p in parts]), Activations.cat(firsts + seconds))


def cached(loaded, enc: Encoded, k: int, batch_size: int = 16, progress: bool = True) -> Cached:
    """:func:`w2s_helpers.core.decoder.activations_of_ids` for all 2N sequences, through the disk cache
    (:func:`w2s_helpers.core.decoder.cached_activations`, keyed by model fingerprint, token ids and k)."""
    key = content_hash(loaded.fingerprint, enc.ids, k, POLICY_VERSION, length=24)
    acts = cached_activations(
        f"policy-{key}.safetensors", len(enc.ids),
        lambda: activations_of_ids(loaded.model, enc.ids, k, loaded.tokenizer.pad_token_id, batch_size, progress),
        lengths=[len(s) for s in enc.ids])
    return Cached(enc, acts)
