"""The ``top_blocks`` regime of reward models: the top k blocks of a decoder and a linear
reward head, trained on cached activations of the block below (:mod:`w2s_helpers.core.decoder`)::

    h    = block_{L-k}( ... block_{L-1}(cached h))   [B, T, H]   (trained)
    r(x) = w . norm(h)[last real token]              [B]         (trained)

That is real adaptation of the representation at a fraction of LoRA's cost; the partial
forward is checked against the full model by :func:`w2s_helpers.core.decoder.check_partial_forward`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from w2s_helpers.core import work
from w2s_helpers.core.batching import epoch_batches
from w2s_helpers.core.decoder import Activations, TopBlocks
from w2s_helpers.rewards import losses


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
    from w2s_helpers.core.progress import bar

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
    from w2s_helpers.rewards import heads

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
