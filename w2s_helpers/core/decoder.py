"""A decoder cut in two: the frozen bottom's activations, cached, and a copy of the top k blocks.

Fine-tuning a whole model costs a full forward and backward pass per step. Both scenarios
of the course cut that cost the same way on a CPU: the bottom L - k blocks stay frozen, so
their output for every sequence is computed once and cached; only the top k blocks (and
what sits on them) train::

    h = cached input of block L-k               [B, T, H]   (frozen bottom, once)
    h = block_{L-k}( ... block_{L-1}(h))        [B, T, H]   (trained)
    h = norm(h)                                 [B, T, H]   what the full model's last state holds

On top of :class:`TopBlocks` the reward scenario puts a linear head
(:mod:`w2s_helpers.rewards.top_blocks`) and the policy scenario the frozen LM head
(:mod:`w2s_helpers.policies.policy`). The cut is only trustworthy if the partial forward
reproduces the full model, so :func:`check_partial_forward` compares the two on real texts.

Supported: decoders with ``layers``, ``norm`` and ``rotary_emb`` (Llama, Qwen2, SmolLM2's
family). Sequences are right-padded, so with causal attention every real token sees only
real tokens and sits at positions 0..len-1, exactly as when the sequence runs alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from w2s_helpers.core import work
from w2s_helpers.core.batching import length_batches, pad_ids
from w2s_helpers.core.store import atomic_write_bytes, cache_dir, content_hash

TOP_BLOCKS_VERSION = "1"


class _Stop(Exception):
    """Raised by the capture hook: nothing above the cached layer needs to run."""


def decoder_parts(model) -> tuple[nn.Module, nn.ModuleList, nn.Module, nn.Module]:
    """(base, layers, final norm, rotary embedding) of a Llama-style decoder, or a clear error."""
    base = getattr(model, "model", model)
    parts = [getattr(base, name, None) for name in ("layers", "norm", "rotary_emb")]
    if any(p is None for p in parts):
        raise NotImplementedError(
            f"top_blocks supports Llama-style decoders (layers, norm, rotary_emb); "
            f"{type(model).__name__} is not one. Use the probe or finetune regime for this rung.")
    return base, *parts  # type: ignore[return-value]


@dataclass(frozen=True)
class Activations:
    """Inputs of block L-k for a list of texts, stored without padding.

    tokens:  [sum of lengths, H] every text's token states, one after another
    lengths: [N] tokens per text (after left truncation)
    """

    tokens: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def offsets(self) -> torch.Tensor:
        return torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)])

    def take(self, idx: Sequence[int]) -> "Activations":
        """The activations of texts ``idx``, in that order."""
        off = self.offsets
        return Activations(torch.cat([self.tokens[off[i]: off[i + 1]] for i in idx]), self.lengths[list(idx)])

    @staticmethod
    def cat(parts: Sequence["Activations"]) -> "Activations":
        """One list of texts from several, in order."""
        return Activations(torch.cat([p.tokens for p in parts]), torch.cat([p.lengths for p in parts]))

    def batch(self, idx: Sequence[int], dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded states [B, T, H] and mask [B, T] of texts ``idx``."""
        off, lens = self.offsets, self.lengths
        t = int(lens[list(idx)].max())
        h = torch.zeros(len(idx), t, self.tokens.shape[1], dtype=dtype)
        mask = torch.zeros(len(idx), t, dtype=torch.long)
        for row, i in enumerate(idx):
            n = int(lens[i])
            h[row, :n] = self.tokens[off[i]: off[i] + n].to(dtype)
            mask[row, :n] = 1
        return h, mask


@torch.inference_mode()
def compute_activations(loaded, texts: Sequence[str], k: int, max_length: int, batch_size: int = 16,
                        progress: bool = True) -> Activations:
    """Run the bottom L - k blocks of ``loaded`` (a backbone) on ``texts``; no cache.

    Texts are truncated from the left (the response is kept); see :func:`activations_of_ids`.
    """
    ids = loaded.tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return activations_of_ids(loaded.model, ids, k, loaded.tokenizer.pad_token_id, batch_size, progress)


@torch.inference_mode()
def activations_of_ids(model: nn.Module, ids: Sequence[list[int]], k: int, pad_id: int, batch_size: int = 16,
                       progress: bool = True) -> Activations:
    """Inputs of block L-k for token sequences ``ids`` (a backbone or a causal LM).

    Stops the forward pass at block L-k with a hook, so the top k blocks cost nothing here.
    Sequences are sorted by length and batched (right padding; at most ``batch_size`` rows and
    2048 padded tokens a batch, see :func:`w2s_helpers.core.batching.length_batches`).
    """
    from w2s_helpers.core.progress import bar

    _, layers, _, _ = decoder_parts(getattr(model, "model", model))
    if not 1 <= k <= len(layers):
        raise ValueError(f"k must be in 1..{len(layers)}, got {k}")
    batches = length_batches([len(x) for x in ids], batch_size, max_tokens=2048)
    captured: list[torch.Tensor] = []

    def hook(module, args, kwargs):
        captured.append(args[0] if args else kwargs["hidden_states"])
        raise _Stop

    handle = layers[len(layers) - k].register_forward_pre_hook(hook, with_kwargs=True)
    per_text: list[torch.Tensor | None] = [None] * len(ids)
    device = next(model.parameters()).device
    try:
        for idx in bar(batches, desc=f"activations below the top {k} blocks", disable=not progress, leave=False):
            x, mask = pad_ids([ids[i] for i in idx], pad_id)
            captured.clear()
            try:
                model(input_ids=x.to(device), attention_mask=mask.to(device), use_cache=False)
            except _Stop:
                pass
            h = captured[0].cpu()
            for row, i in enumerate(idx):
                per_text[i] = h[row, : len(ids[i])].clone()
    finally:
        handle.remove()
    if work.enabled():
        n_tok, dtype = sum(map(len, ids)), work.dtype_of(model)
        work.record(f"below-top-{k}", work.model_name(model, dtype),
                    2 * work.dense_params(*layers[: len(layers) - k]) * n_tok, n_tok, ids, dtype=dtype)
    return Activations(torch.cat(per_text), torch.tensor([len(s) for s in ids]))  # type: ignore[arg-type]


def activations(loaded, texts: Sequence[str], k: int, max_length: int, batch_size: int = 16,
                progress: bool = True) -> Activations:
    """:func:`compute_activations` through the disk cache (:func:`cached_activations`), keyed by
    the model fingerprint, the texts, k, max_length and this module's version."""
    from w2s_helpers.core.features import texts_hash

    key = content_hash(loaded.fingerprint, texts_hash(texts), k, max_length, TOP_BLOCKS_VERSION, length=24)
    return cached_activations(f"{key}.safetensors", len(texts),
                              lambda: compute_activations(loaded, texts, k, max_length, batch_size, progress))


def cached_activations(name: str, n: int, compute, lengths: Sequence[int] | None = None) -> Activations:
    """``compute()`` once, stored as ``<cache>/activations/name`` (safetensors, atomic writes).

    A stored entry is used when it holds ``n`` texts (and, if given, exactly ``lengths`` tokens
    each); a mismatched or unreadable entry is recomputed with a warning.
    """
    import warnings

    from safetensors.torch import load_file, save

    path: Path = cache_dir("activations") / name
    if path.exists():
        try:
            d = load_file(str(path))
            acts = Activations(d["tokens"], d["lengths"])
            if (len(acts) == n and int(acts.lengths.sum()) == len(acts.tokens)
                    and (lengths is None or acts.lengths.tolist() == list(lengths))):
                return acts
            warnings.warn(f"activation cache entry {path.name} does not match its key; recomputing")
        except Exception as e:  # truncated or corrupted file
            warnings.warn(f"activation cache entry {path.name} is unreadable ({type(e).__name__}); recomputing")
    acts = compute()
    atomic_write_bytes(path, save({"tokens": acts.tokens.contiguous(), "lengths": acts.lengths}))
    return acts


class TopBlocks(nn.Module):
    """Copies of the top k blocks, the rotary embedding and the final norm of a decoder.

    hidden(h [B, T, H] states entering block L-k, mask [B, T] right padding) -> [B, T, H]
    final normed states, what the full model's last hidden state holds.
    """

    def __init__(self, backbone: nn.Module, k: int, dtype: torch.dtype = torch.float32):
        super().__init__()
        _, layers, norm, rotary = decoder_parts(backbone)
        self.blocks = nn.ModuleList(copy.deepcopy(layers[len(layers) - k:])).to(dtype)
        self.norm = copy.deepcopy(norm).to(dtype)
        self.rotary = copy.deepcopy(rotary)

    def hidden(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = h.shape
        pos = torch.arange(t, device=h.device).expand(b, t)
        rope = self.rotary(h, pos)
        allowed = torch.tril(torch.ones(t, t, dtype=torch.bool, device=h.device))[None] & mask.bool()[:, None, :]
        bias = torch.zeros(b, 1, t, t, dtype=h.dtype, device=h.device)
        bias.masked_fill_(~allowed[:, None], torch.finfo(h.dtype).min)
        for block in self.blocks:
            out = block(h, attention_mask=bias, position_ids=pos, position_embeddings=rope)
            h = out[0] if isinstance(out, tuple) else out
        return self.norm(h)


@torch.inference_mode()
def check_partial_forward(loaded, texts: Sequence[str], k: int, max_length: int = 128) -> float:
    """Largest |difference| between the full model's last hidden state and the partial
    forward (cached block L-k input through the copied top k blocks), over real tokens of
    ``texts`` batched together, relative to the largest |state|. ~1e-6 in float32."""
    acts = compute_activations(loaded, texts, k, max_length, batch_size=len(texts), progress=False)
    dtype = next(loaded.model.parameters()).dtype
    top = TopBlocks(loaded.model, k, dtype=dtype).eval()
    h, mask = acts.batch(range(len(texts)), dtype=dtype)
    partial = top.hidden(h, mask)
    ids, _ = pad_ids(loaded.tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"],
                  loaded.tokenizer.pad_token_id)
    full = loaded.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    real = mask.bool()
    return float((partial[real] - full[real]).abs().max() / full[real].abs().max())
