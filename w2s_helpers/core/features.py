"""Frozen-backbone features of texts, batched by length and cached on disk.

The CPU-friendly path of the course: run each backbone forward once over every
(prompt, response) transcript, pool the hidden states into one vector per text, and
train small heads on those vectors in seconds.

    spec = FeatureSpec(pooling="last", max_length=256)
    phi = features.extract(lm, texts, spec)          # [N, H] float32, cached

Cache entries are safetensors files (no pickle) under ``<cache>/features``, keyed by
the model fingerprint, a hash of the texts, the spec and :data:`FEATURES_VERSION`;
they are written atomically and a corrupted entry is recomputed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch

from w2s_helpers.core import work
from w2s_helpers.core.batching import length_batches
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.core.store import atomic_write_bytes, cache_dir, content_hash

# Bump when the extraction code changes what it returns: old cache entries then miss.
FEATURES_VERSION = 1

Pooling = Literal["last", "mean"]


@dataclass(frozen=True)
class FeatureSpec:
    """What to extract.

    pooling:    ``"last"`` = hidden state of the last non-pad token (the paper's reward
                model reads its scalar there); ``"mean"`` = average over non-pad tokens.
    max_length: longer texts are truncated from the left, keeping the response.
    layer:      which hidden state: ``None`` = the final one; an int indexes
                ``hidden_states`` (0 = embeddings); a float in (0, 1] is a fraction of depth.
    dtype:      compute dtype: ``"auto"`` (bf16 only where this machine runs it natively and
                faster, see :mod:`w2s_helpers.core.precision`), ``"float32"`` or ``"bfloat16"``;
                stored features are always float32. ``"auto"`` is resolved before the cache
                key is taken, so keys always name the dtype that really ran. Fastest is a
                backbone loaded in that dtype (``models.load(name, dtype=spec.dtype)``); an
                fp32 backbone with a bf16 spec runs under autocast instead (slower on CPU).
    batch_size: at most this many texts per forward pass (texts are sorted by length first).
    batch_tokens: at most this many tokens, padding included, per forward pass: long texts go
                in small batches and short ones in large batches, so little work is padding
                (:func:`w2s_helpers.core.batching.length_batches`).
    """

    pooling: Pooling = "last"
    max_length: int = 256
    layer: int | float | None = None
    dtype: Literal["auto", "float32", "bfloat16"] = "float32"
    batch_size: int = 16
    batch_tokens: int = 4096

    def resolved(self, device: str = "cpu") -> "FeatureSpec":
        """This spec with ``dtype="auto"`` replaced by the precision chosen for ``device``."""
        from w2s_helpers.core.precision import resolve

        return dataclasses.replace(self, dtype=resolve(self.dtype, device))


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    """Pool token states into one vector per sequence, respecting the attention mask.

    hidden: [B, T, H] hidden states; mask: [B, T] with 1 on real tokens, 0 on padding
    (either side). Returns [B, H].
    """
    if how == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if how == "last":
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (mask * positions).argmax(dim=1)  # index of the last real token per row
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {how!r}; use 'last' or 'mean'")


def _layer_index(layer: int | float | None, n_hidden: int) -> int:
    """Index into ``hidden_states`` (length ``n_hidden`` = layers + 1)."""
    if layer is None:
        return n_hidden - 1
    if isinstance(layer, float):
        if not 0 < layer <= 1:
            raise ValueError(f"fractional layer must be in (0, 1], got {layer}")
        return round(layer * (n_hidden - 1))
    if not -n_hidden <= layer < n_hidden:
        raise ValueError(f"layer {layer} out of range for {n_hidden} hidden states")
    return layer % n_hidden


def texts_hash(texts: Sequence[str]) -> str:
    """sha256 over the texts, order included (length-prefixed so boundaries count)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def cache_key(fingerprint: str, texts: Sequence[str], spec: FeatureSpec) -> str:
    """Key of a feature cache entry: model, texts, spec (with a concrete dtype) and code version."""
    if spec.dtype == "auto":
        raise ValueError("resolve the spec first (spec.resolved(device)): a key must name the dtype that ran")
    return content_hash(fingerprint, texts_hash(texts), dataclasses.asdict(spec), FEATURES_VERSION, length=24)


def _precision(model, dtype: str):
    """Context that makes ``model`` compute in ``dtype``; refuses a silent mismatch."""
    param = next(model.parameters())
    if param.dtype == getattr(torch, dtype):
        return contextlib.nullcontext()
    if dtype == "bfloat16" and param.dtype == torch.float32:
        return torch.autocast(device_type=param.device.type, dtype=torch.bfloat16)
    raise ValueError(f"model weights are {param.dtype} but the spec asks for {dtype}: "
                     f"load the model with dtype={dtype!r} or change FeatureSpec.dtype")


@torch.inference_mode()
def compute(model, tokenizer, texts: Sequence[str], spec: FeatureSpec, progress: bool = True) -> torch.Tensor:
    """Features of ``texts`` without the cache. Returns [N, H] float32 on CPU, input order.

    Texts are tokenised once, sorted by length and cut into batches of at most
    ``spec.batch_size`` texts and ``spec.batch_tokens`` padded tokens (so padding is minimal),
    run under ``inference_mode``, pooled and put back in order.
    """
    from w2s_helpers.core.progress import bar

    if len(texts) == 0:
        raise ValueError("no texts to embed")
    enc = tokenizer(list(texts), truncation=True, max_length=spec.max_length, add_special_tokens=True)
    ids = enc["input_ids"]
    device = next(model.parameters()).device
    spec = spec.resolved(device.type)
    precision = _precision(model, spec.dtype)
    out: torch.Tensor | None = None
    pbar = bar(total=len(ids), desc="features", unit="text", disable=not progress, leave=False)
    n_hidden = model.config.num_hidden_layers + 1
    final = _layer_index(spec.layer, n_hidden) == n_hidden - 1  # the last state: no need to keep them all
    for idx in length_batches([len(x) for x in ids], spec.batch_size, spec.batch_tokens):
        batch = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, padding=True, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        with precision:
            if final:
                h = model(**batch).last_hidden_state
            else:
                h = model(**batch, output_hidden_states=True).hidden_states[_layer_index(spec.layer, n_hidden)]
        vec = pool(h.float(), batch["attention_mask"], spec.pooling).cpu()
        if out is None:
            out = torch.empty(len(ids), vec.shape[1], dtype=torch.float32)
        out[torch.tensor(idx)] = vec
        pbar.update(len(idx))
    pbar.close()
    assert out is not None
    if work.enabled():
        n_tok = sum(map(len, ids))
        work.record("features", work.model_name(model, spec.dtype, f"max_length={spec.max_length}"),
                    2 * work.dense_params(model) * n_tok, n_tok, texts, list(map(len, ids)), dtype=spec.dtype)
    return out


def _load_entry(path: Path, key: str, n: int) -> torch.Tensor | None:
    """Return the cached tensor if the entry is complete and matches; else None."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            x = f.get_tensor("features")
    except Exception as e:  # truncated or garbled file: recompute
        warnings.warn(f"feature cache entry {path.name} is unreadable ({type(e).__name__}); recomputing")
        return None
    if meta.get("key") != key or x.ndim != 2 or x.shape[0] != n or not torch.isfinite(x).all():
        warnings.warn(f"feature cache entry {path.name} does not match its key; recomputing")
        return None
    return x


def extract(
    loaded, texts: Sequence[str], spec: FeatureSpec = FeatureSpec(), cache: bool = True, progress: bool = True
) -> torch.Tensor:
    """Cached features of ``texts`` from a :class:`~w2s_helpers.core.models.Loaded` backbone.

    Returns [N, H] float32. A second call with the same model, texts and spec reads the
    safetensors entry instead of running the model.
    """
    from safetensors.torch import save

    spec = spec.resolved(next(loaded.model.parameters()).device.type)
    key = cache_key(loaded.fingerprint, texts, spec)
    path = cache_dir("features") / f"{key}.safetensors"
    if cache and path.exists():
        x = _load_entry(path, key, len(texts))
        if x is not None:
            return x
    x = compute(loaded.model, loaded.tokenizer, texts, spec, progress)
    if cache:
        meta = {"key": key, "fingerprint": loaded.fingerprint, "spec": json.dumps(dataclasses.asdict(spec))}
        atomic_write_bytes(path, save({"features": x.contiguous()}, metadata=meta))
    return x


def pair_features(
    loaded, pairs: Sequence[PreferencePair], spec: FeatureSpec = FeatureSpec(), cache: bool = True,
    progress: bool = True, prefix: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of each pair's chosen and rejected transcripts: two [N, H] tensors.

    ``prefix``: extract ``pairs[:prefix]`` and ``pairs[prefix:]`` as two cache entries, so a
    chapter that needs only the first ``prefix`` pairs (chapter 0's tour is the first
    ``n_tour`` pairs of chapters 1-2's pools) and one that needs them all share the first
    entry, computed once and identically whichever chapter runs first.
    """
    if prefix is not None and 0 < prefix < len(pairs):
        head = pair_features(loaded, pairs[:prefix], spec, cache, progress)
        tail = pair_features(loaded, pairs[prefix:], spec, cache, progress)
        return torch.cat([head[0], tail[0]]), torch.cat([head[1], tail[1]])
    texts = [p.transcript("chosen") for p in pairs] + [p.transcript("rejected") for p in pairs]
    x = extract(loaded, texts, spec, cache, progress)
    return x[: len(pairs)], x[len(pairs):]
