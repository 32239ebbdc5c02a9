"""The ``top_blocks`` regime: the top k transformer blocks and a reward head trained on
cached activations of the layer below.

Fine-tuning a whole model costs a full forward and backward pass per step. Here the
bottom L - k blocks stay frozen, so their output for every text is computed once and
cached; training runs only the top k blocks, the final norm and a linear reward head::

    h      = cached input of block L-k               [B, T, H]   (frozen bottom, once)
    h      = block_{L-k}( ... block_{L-1}(h))        [B, T, H]   (trained)
    r(x)   = w . norm(h)[last real token]            [B]         (trained)

That is real adaptation of the representation at a fraction of LoRA's cost. It is only
trustworthy if the partial forward reproduces the full model, so :func:`check_partial_forward`
compares the two on real texts (tests call it; so does chapter 1).

Supported: decoders with ``layers``, ``norm`` and ``rotary_emb`` (Llama, Qwen2, SmolLM2's
family). Texts are right-padded, so with causal attention every real token sees only real
tokens and sits at positions 0..len-1, exactly as when the text is run alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from . import losses, work
from .store import atomic_write_bytes, cache_dir, content_hash

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


def _pad(seqs: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] and mask [B, T]."""
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


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
    2048 padded tokens a batch, see :func:`w2s_helpers.features.length_batches`).
    """
    from .features import length_batches
    from .progress import bar

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
            x, mask = _pad([ids[i] for i in idx], pad_id)
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
    from .features import texts_hash

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


def epoch_batches(n: int, epochs: int, batch_size: int, seed: int) -> list[list[int]]:
    """Index batches for ``epochs`` passes over n items, a fresh seeded permutation per epoch."""
    g = torch.Generator().manual_seed(seed)
    return [perm[i:i + batch_size] for _ in range(epochs)
            for perm in [torch.randperm(n, generator=g).tolist()] for i in range(0, n, batch_size)]


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


class TopBlocksReward(TopBlocks):
    """:class:`TopBlocks` plus a linear reward head.

    forward(h [B, T, H] states entering block L-k, mask [B, T] right padding) -> r [B].
    """

    def __init__(self, backbone: nn.Module, k: int, seed: int = 0, dtype: torch.dtype = torch.float32):
        super().__init__(backbone, k, dtype)
        hidden = self.norm.weight.shape[0]
        g = torch.Generator().manual_seed(seed)
        self.score = nn.Linear(hidden, 1, bias=False, dtype=dtype)
        with torch.no_grad():
            self.score.weight.copy_(torch.randn(1, hidden, generator=g) * hidden**-0.5)

    def last_states(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Final normed state of each text's last real token [B, H] (the probe's feature)."""
        return self.hidden(h, mask)[torch.arange(len(h)), mask.sum(1) - 1]

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.score(self.last_states(h, mask)).squeeze(-1)


@torch.inference_mode()
def check_partial_forward(loaded, texts: Sequence[str], k: int, max_length: int = 128) -> float:
    """Largest |difference| between the full model's last hidden state and the partial
    forward (cached block L-k input through the copied top k blocks), over real tokens of
    ``texts`` batched together, relative to the largest |state|. ~1e-6 in float32."""
    acts = compute_activations(loaded, texts, k, max_length, batch_size=len(texts), progress=False)
    dtype = next(loaded.model.parameters()).dtype
    top = TopBlocksReward(loaded.model, k, dtype=dtype).eval()
    h, mask = acts.batch(range(len(texts)), dtype=dtype)
    partial = top.hidden(h, mask)
    ids, _ = _pad(loaded.tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"],
                  loaded.tokenizer.pad_token_id)
    full = loaded.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    real = mask.bool()
    return float((partial[real] - full[real]).abs().max() / full[real].abs().max())


@dataclass(frozen=True)
class TopBlocksConfig:
    """Training of the top blocks (Adam; the head learns faster than the blocks)."""

    k: int = 2
    lr: float = 1e-4
    head_lr: float = 1e-3
    batch_size: int = 16
    epochs: int = 1
    seed: int = 0
    alpha: float = 0.0
    probe_init: bool = True     # start the head at the linear probe of the initial features
    probe_l2: float = 1.0       # its L2 penalty (on standardised features)


def train(backbone: nn.Module, chosen: Activations, rejected: Activations, soft_label: torch.Tensor,
          config: TopBlocksConfig, device: str = "cpu", progress: bool = True) -> TopBlocksReward:
    """Train a :class:`TopBlocksReward` on pairs (chosen-first; the loss is symmetric in the slots).

    chosen, rejected: activations of N pairs; soft_label: [N] probability that the chosen
    side is preferred (1 for ground truth, sigma(delta_weak) for a student). With
    ``config.alpha > 0`` the paper's explicit-conflict term is added (ground truth: chosen).
    """
    from .progress import bar

    n = len(chosen)
    if len(rejected) != n or len(soft_label) != n:
        raise ValueError(f"{n} chosen, {len(rejected)} rejected, {len(soft_label)} labels")
    torch.manual_seed(config.seed)
    model = TopBlocksReward(backbone, config.k, seed=config.seed).to(device)
    if config.probe_init:
        init_head_from_probe(model, chosen, rejected, soft_label, config.probe_l2)
    model.train()
    head = list(model.score.parameters())
    body = [p for name, p in model.named_parameters() if not name.startswith("score")]
    opt = torch.optim.Adam([{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}])
    steps = epoch_batches(n, config.epochs, config.batch_size, config.seed)
    gt = torch.ones(n)
    for batch in bar(steps, desc=f"top {config.k} blocks", disable=not progress, leave=False):
        hc, mc = (x.to(device) for x in chosen.batch(batch))
        hr, mr = (x.to(device) for x in rejected.batch(batch))
        delta = model(hc, mc) - model(hr, mr)
        y = soft_label[batch].float().to(device)
        loss = (losses.explicit_conflict_loss(delta, y, gt[batch].to(device), config.alpha) if config.alpha
                else losses.pairwise_loss(delta, y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    if work.enabled():  # forward + backward ~ 3 forwards, over both sides of every step's pairs
        n_tok = sum(int(chosen.lengths[b].sum() + rejected.lengths[b].sum()) for b in steps)
        work.record("train-top-blocks", f"top {config.k} blocks", 6 * work.dense_params(model) * n_tok, n_tok,
                    dtype=work.dtype_of(model))
    return model.eval()


@torch.inference_mode()
def pooled(model: TopBlocksReward, acts: Activations, batch_size: int = 32) -> torch.Tensor:
    """Last-token final states [N, H] of the current blocks, batched by length (at
    initialisation these are the probe's features)."""
    device = next(model.parameters()).device
    order = torch.argsort(acts.lengths, descending=True).tolist()
    out = torch.empty(len(acts), model.score.in_features)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        out[idx] = model.last_states(*(x.to(device) for x in acts.batch(idx))).float().cpu()
    return out


def init_head_from_probe(model: TopBlocksReward, chosen: Activations, rejected: Activations,
                         soft_label: torch.Tensor, l2: float) -> None:
    """Set the reward head to the linear probe fitted on the initial features (LP-FT:
    fit the head first, then adapt the blocks, so training starts where the probe ends
    instead of from a random head that would drag the blocks around)."""
    from . import heads

    c, r = pooled(model, chosen), pooled(model, rejected)
    sd = torch.cat([c, r]).std(0).clamp(min=1e-6)
    w = heads.fit_pairwise_head((c - r) / sd, soft_label.float(), l2=l2)
    with torch.no_grad():
        model.score.weight.copy_((w / sd)[None].to(model.score.weight))


@torch.inference_mode()
def margins(model: TopBlocksReward, chosen: Activations, rejected: Activations, batch_size: int = 32) -> torch.Tensor:
    """delta [N] = r(chosen) - r(rejected) = w . (pooled(chosen) - pooled(rejected))."""
    w = model.score.weight[0].float().cpu()
    if work.enabled():
        n_tok = int(chosen.lengths.sum() + rejected.lengths.sum())
        work.record("score-top-blocks", f"top {len(model.blocks)} blocks", 2 * work.dense_params(model) * n_tok, n_tok,
                    dtype=work.dtype_of(model))
    return (pooled(model, chosen, batch_size) - pooled(model, rejected, batch_size)) @ w
