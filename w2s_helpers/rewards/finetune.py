"""The ``finetune`` regime: whole reward models trained with trl's ``RewardTrainer``.

trl's trainer learns from hard preferences only, and drops any dataset column it does not
know. :class:`W2SRewardTrainer` keeps two more columns per pair and uses the course's
losses (:mod:`w2s_helpers.rewards.losses`), so the probe and fine-tuning regimes optimise the same
objective:

- ``soft_label``: probability that the chosen side is preferred (1.0 for ground truth, a
  weak model's sigma(delta_weak) for a student);
- ``gt_label``: ground truth (always 1.0 here: ``chosen`` is the harmless side), used only
  by the explicit-conflict term when ``alpha > 0``.

Pairs are stored chosen-first. The pairwise loss is symmetric under swapping the slots
(BCE(sigma(-d), 1 - y) = BCE(sigma(d), y)) and the reward model scores each text on its
own, so the paper's random slot order changes nothing here.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from w2s_helpers.core import work
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.rewards import losses


def tokenize_pairs(tokenizer, pairs: Sequence[PreferencePair], max_length: int) -> dict[str, list[list[int]]]:
    """Token ids of each side's transcript, truncated from the left to ``max_length``.

    Pre-tokenising keeps every pair: trl would otherwise drop pairs longer than max_length.
    """
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        enc = lambda texts: tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        return {"chosen_ids": enc([p.transcript("chosen") for p in pairs]),
                "rejected_ids": enc([p.transcript("rejected") for p in pairs])}
    finally:
        tokenizer.truncation_side = side


def preference_dataset(tokenizer, pairs, soft_label, max_length: int, gt_label=None):
    """A ``datasets.Dataset`` with chosen_ids, rejected_ids, soft_label, gt_label columns."""
    from datasets import Dataset

    soft = [float(x) for x in soft_label]
    if len(soft) != len(pairs):
        raise ValueError(f"{len(pairs)} pairs but {len(soft)} soft labels")
    gt = [1.0] * len(pairs) if gt_label is None else [float(x) for x in gt_label]
    return Dataset.from_dict({**tokenize_pairs(tokenizer, pairs, max_length), "soft_label": soft, "gt_label": gt})


def _collator_class():
    from trl.trainer.reward_trainer import DataCollatorForPreference

    @dataclass
    class SoftPreferenceCollator(DataCollatorForPreference):
        """trl's preference collator (chosen half, then rejected half) plus the label columns."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            out = super().torch_call(examples)
            for key in ("soft_label", "gt_label"):
                out[key] = torch.tensor([e[key] for e in examples], dtype=torch.float32)
            return out

    return SoftPreferenceCollator


def _trainer_class():
    from trl import RewardTrainer

    class W2SRewardTrainer(RewardTrainer):
        """RewardTrainer on soft labels, with the paper's optional explicit-conflict term."""

        def __init__(self, *args, alpha: float = 0.0, **kwargs):
            self.alpha = alpha
            super().__init__(*args, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            soft, gt = inputs.pop("soft_label"), inputs.pop("gt_label")
            outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
            r_chosen, r_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            delta = r_chosen - r_rejected
            if self.alpha:
                loss = losses.explicit_conflict_loss(delta, soft, gt, self.alpha)
            else:
                loss = losses.pairwise_loss(delta, soft)
            mode = "train" if model.training else "eval"
            self._metrics[mode]["accuracy"].append((delta > 0).float().mean().item())
            return (loss, outputs) if return_outputs else loss

    return W2SRewardTrainer


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning run (paper: lr 1e-5, batch 32, 1 epoch, cosine)."""

    lr: float = 1e-5
    batch_size: int = 32
    epochs: int = 1
    max_length: int = 512
    seed: int = 0
    alpha: float = 0.0          # explicit-conflict weight (0 = none)
    use_cpu: bool = False       # force the CPU even when a GPU is visible
    bf16: bool = False          # bf16 mixed precision (GPUs)
    checkpointing: bool = False # activation checkpointing: recompute activations in the backward pass
                                # (about 20% slower; activations shrink to one layer's plus each layer's input)
    grad_accum: int = 1         # gradient accumulation: batch_size per step per device x grad_accum per update
    log_every: int = 10         # trainer log lines every this many steps


def make_trainer(loaded, dataset, config: FinetuneConfig, output_dir: str | None = None, save_steps: int = 0):
    """A configured :class:`W2SRewardTrainer` for a ``head="reward"`` model.

    ``save_steps`` > 0: a checkpoint (weights, optimiser, scheduler, RNG states) in ``output_dir``
    every that many updates, the last two kept, so ``trainer.train(resume_from_checkpoint=...)``
    continues an interrupted run (:mod:`w2s_helpers.rewards.jobs`).

    Refuses to build one that transformers would silently wrap in ``nn.DataParallel``
    (:func:`w2s_helpers.core.models.refuse_data_parallel`)."""
    import datasets
    from trl import RewardConfig

    from w2s_helpers.core.models import refuse_data_parallel

    if not config.use_cpu:
        refuse_data_parallel()

    datasets.disable_progress_bars()  # trl's length filter would print a bar per run

    args = RewardConfig(
        output_dir=output_dir or tempfile.mkdtemp(prefix="w2s-rm-"),
        learning_rate=config.lr,
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        lr_scheduler_type="cosine",
        max_length=config.max_length,
        seed=config.seed,
        bf16=config.bf16,
        activation_checkpointing=config.checkpointing,
        gradient_accumulation_steps=config.grad_accum,
        remove_unused_columns=False,        # keep soft_label and gt_label for the collator (public API)
        use_cpu=config.use_cpu,
        report_to="none",
        save_strategy="steps" if save_steps > 0 else "no",
        save_steps=save_steps if save_steps > 0 else 500,
        save_total_limit=2,
        logging_steps=config.log_every,
        disable_dropout=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    collator = _collator_class()(pad_token_id=loaded.tokenizer.pad_token_id)
    return _trainer_class()(model=loaded.model, args=args, train_dataset=dataset,
                            processing_class=loaded.tokenizer, data_collator=collator, alpha=config.alpha)


@torch.inference_mode()
def reward_margins(loaded, pairs: Sequence[PreferencePair], max_length: int, batch_size: int = 16) -> torch.Tensor:
    """delta [N] = r(chosen) - r(rejected) from a reward model, in eval mode."""
    model, tok = loaded.model, loaded.tokenizer
    was_training = model.training
    model.eval()
    ids = tokenize_pairs(tok, pairs, max_length)
    device = next(model.parameters()).device

    def rewards(seqs: list[list[int]]) -> torch.Tensor:
        out = []
        for i in range(0, len(seqs), batch_size):
            batch = tok.pad({"input_ids": seqs[i:i + batch_size]}, padding=True, return_tensors="pt")
            out.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.squeeze(-1).float().cpu())
        return torch.cat(out)

    delta = rewards(ids["chosen_ids"]) - rewards(ids["rejected_ids"])
    model.train(was_training)
    if work.enabled():
        n_tok = sum(map(len, ids["chosen_ids"])) + sum(map(len, ids["rejected_ids"]))
        work.record("score-finetune", loaded.fingerprint, 2 * work.dense_params(model) * n_tok, n_tok,
                    dtype=work.dtype_of(model))
    return delta
