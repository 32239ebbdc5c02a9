"""Whole policies through trl's trainers, for the paper's scale (GPUs, DDP or FSDP).

The course's own loop (:func:`w2s_helpers.policies.training.preference_optimise`) trains the
CPU's top-block policies and writes the DPO step out for the learner. A whole GPT-2 large or
Mistral-7B needs what transformers' ``Trainer`` brings: several processes under ``accelerate
launch``, gradient accumulation, bf16, activation checkpointing, checkpoints to resume from.
:class:`W2SDPOTrainer` is trl's ``DPOTrainer`` with the course's objective, for DPO and SimPO alike
(the loss is the course's; SimPO ignores the reference, so trl's ``CPOTrainer`` and its own data
handling are not needed):

- **hard weak labels**: each pair keeps the data's order (chosen = the ground-truth harmless
  side) and a ``weak_label`` column says which side the student is told to prefer;
- **the explicit conflict**: a ``conflict`` column marks the pairs the explicit term may act on,
  and the loss is :func:`w2s_helpers.policies.training.po_loss` itself, split by that mask as
  the course's loop splits it (each part weighted by its share of the batch);
- **the reference**: the model as given (the SFT copy), its log-probs precomputed once by trl
  (``precompute_ref_log_probs``), so no second model is held in memory during training.

:func:`make_sft_trainer` is trl's ``SFTTrainer`` on the preferred response of each pair
(completion-only loss: the mean NLL per response token, the course's SFT loss).

Both trainers get the course's tokens (:func:`w2s_helpers.policies.encoding.encode_pairs`, with
its separate prompt and response cuts), not text: trl's own tokenisation is the same before any
cut, but it can only truncate whole sequences (``max_length``), and a pair longer than the model's
positions would fail. The overrides: ``compute_loss`` (the course's loss), ``create_scheduler``
(its schedule), the collator (two more columns) and ``_prepare_dataset``, trl's one private
method here, which lets tokenised rows through untouched (trl 1.16; the tests would notice a change).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from w2s_helpers.core.data import PreferencePair
from w2s_helpers.policies.encoding import common_prefix, encode_pairs
from w2s_helpers.policies.training import History, POConfig, implied_margin, log_history, po_loss, warmup_schedule


def preference_rows(tokenizer, pairs: Sequence[PreferencePair], weak_label: torch.Tensor,
                    conflict: torch.Tensor | None = None, max_prompt: int | None = None,
                    max_response: int | None = None) -> list[dict[str, Any]]:
    """trl's tokenised columns (``prompt_ids``, ``chosen_ids`` = the ground-truth harmless side,
    ``rejected_ids``), made by :func:`~w2s_helpers.policies.encoding.encode_pairs` with the course's
    cuts (the last ``max_prompt`` prompt tokens, the first ``max_response`` of each response), plus
    ``weak_label`` [N] (True: the student is told the harmless side is preferred) and ``conflict``
    [N] (default: all). Where the two sides' prompts tokenise differently, the shared prefix is the
    prompt and the rest joins each response (as trl does)."""
    n = len(pairs)
    conflict = torch.ones(n, dtype=torch.bool) if conflict is None else conflict.bool()
    if len(weak_label) != n or len(conflict) != n:
        raise ValueError(f"{n} pairs but {len(weak_label)} weak labels and {len(conflict)} conflict marks")
    enc = encode_pairs(tokenizer, pairs, max_prompt, max_response)
    rows = []
    for i, (w, c) in enumerate(zip(weak_label.tolist(), conflict.tolist())):
        chosen, rejected = enc.ids[i], enc.ids[n + i]
        cut = min(int(enc.starts[i]), int(enc.starts[n + i]), common_prefix(chosen, rejected))
        rows.append({"prompt_ids": chosen[:cut], "chosen_ids": chosen[cut:], "rejected_ids": rejected[cut:],
                     "weak_label": int(bool(w)), "conflict": int(bool(c))})
    return rows


def completion_rows(tokenizer, pairs: Sequence[PreferencePair], label: torch.Tensor, max_prompt: int | None = None,
                    max_response: int | None = None) -> list[dict[str, Any]]:
    """trl's SFT columns (``input_ids``, ``completion_mask``) of each pair's preferred response
    (``label`` [N] True: the chosen side), tokenised and cut as :func:`preference_rows` does."""
    n = len(pairs)
    if len(label) != n:
        raise ValueError(f"{n} pairs but {len(label)} labels")
    enc = encode_pairs(tokenizer, pairs, max_prompt, max_response)
    rows = []
    for i, y in enumerate(label.tolist()):
        r = i if bool(y) else n + i
        ids, start = enc.ids[r], int(enc.starts[r])
        rows.append({"input_ids": ids, "completion_mask": [0] * start + [1] * (len(ids) - start)})
    return rows


def _collator_class():
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    @dataclass
    class LabelledPreferenceCollator(DataCollatorForPreference):
        """trl's preference collator (chosen half, then rejected half) plus the two label columns."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            out = super().torch_call(examples)
            for key in ("weak_label", "conflict"):
                out[key] = torch.tensor([bool(e[key]) for e in examples])
            return out

    return LabelledPreferenceCollator


def completion_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     completion_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-probs [B], completion tokens [B]) of the completion tokens of each row."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1]
    nll = F.cross_entropy(logits.float().transpose(1, 2), input_ids[:, 1:], reduction="none")      # [B, T-1]
    mask = completion_mask[:, 1:].float()
    return -(nll * mask).sum(1), mask.sum(1)


def record(trainer, key: str, value: float) -> None:
    """Append ``value`` to ``trainer.history[key]`` when the trainer was given a history."""
    log_history(getattr(trainer, "history", None), key, value)


def _watch_callback(watch, n_watch: int):
    """A TrainerCallback that records ``watch()`` (the held-out accuracy of the policy being
    trained) before the first update and at ``n_watch`` evenly spaced updates, as the course's
    loop does ("po.watch_step", "po.watch_accuracy")."""
    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        def __init__(self):
            self.trainer, self.at = None, set()

        def _look(self, step: int, model) -> None:
            was = model.training
            record(self.trainer, "po.watch_step", step)
            record(self.trainer, "po.watch_accuracy", watch())
            model.train(was)

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.at = set(torch.linspace(0, state.max_steps, n_watch + 1).round().long().tolist())
            if state.global_step == 0:          # (a resumed run: its earlier points were not kept)
                self._look(0, model)

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step in self.at and state.global_step > 0:
                self._look(state.global_step, model)

    return Watch()


class CourseSchedule:
    """A trainer mixin: with ``course_schedule`` set, the learning rate follows the course's loop
    (:func:`w2s_helpers.policies.training.warmup_schedule`: linear warm-up over ``warmup`` of the
    updates, then linear decay) instead of transformers' schedule of the same name, which starts
    its warm-up at zero. Overrides the public ``create_scheduler``."""

    course_schedule: bool = False
    warmup: float = 0.1

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if not self.course_schedule:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            self.lr_scheduler = warmup_schedule(optimizer or self.optimizer, num_training_steps, self.warmup)
        return self.lr_scheduler


def _trainer_class():
    from trl import DPOTrainer

    class W2SDPOTrainer(CourseSchedule, DPOTrainer):
        """DPOTrainer on hard weak labels with the course's loss and explicit-conflict term."""

        def __init__(self, *args, po: POConfig, **kwargs):
            self.po = po
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            """Rows the course tokenised (:func:`preference_rows`) go in as they are: trl would
            tokenise text again and could not apply the course's separate prompt and response cuts."""
            if "prompt_ids" in dataset.column_names:
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

        def compute_ref_log_probs(self, model, inputs):
            """trl's reference pass, without the two label columns (the model would get them)."""
            return super().compute_ref_log_probs(model, {k: v for k, v in inputs.items()
                                                         if k not in ("weak_label", "conflict")})

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            label, conflict = inputs["weak_label"], inputs["conflict"]
            lp, lengths = completion_logps(model, inputs["input_ids"], inputs["attention_mask"],
                                           inputs["completion_mask"])
            lp = torch.stack(lp.chunk(2), 1)                                   # [B, 2]: harmless, harmful
            lengths = torch.stack(lengths.chunk(2), 1)
            ref = torch.stack([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]], 1).to(lp)
            loss = lp.new_zeros(())
            for part, cfg in ((conflict, self.po), (~conflict, self.po.replace(alpha=0.0))):
                if part.any():
                    loss = loss + po_loss(lp[part], ref[part], lengths[part], label[part], cfg) * (
                        part.sum() / len(label))
            mode = "train" if model.training else "eval"
            margin = implied_margin(lp.detach(), ref, lengths, label, self.po)
            self._metrics[mode]["w2s/margin"].append(margin.mean().item())
            if model.training:          # per micro-batch, as the course's loop logs per step
                record(self, "po.loss", loss.item())
                record(self, "po.margin", margin.mean().item())
                record(self, "po.accuracy", (margin > 0).float().mean().item())
            return (loss, {"logps": lp}) if return_outputs else loss

    return W2SDPOTrainer


def fsdp_launch() -> bool:
    """Whether this process was started by ``accelerate launch`` with an FSDP layout."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")


def make_po_trainer(model, tokenizer, pairs: Sequence[PreferencePair], weak_label: torch.Tensor, config: POConfig,
                     conflict: torch.Tensor | None = None, output_dir: str | None = None, scheduler: str = "course",
                     grad_accum: int = 1, bf16: bool = False, checkpointing: bool = False, save_steps: int = 0,
                     use_cpu: bool | None = None, max_prompt: int | None = None, max_response: int | None = None,
                     history: History | None = None, watch=None, n_watch: int = 8,
                     copy_reference: bool | None = None):
    """A configured :class:`W2SDPOTrainer` (DPO or SimPO, as ``config.loss`` says) for a whole causal
    LM (full fine-tuning: LoRA, if wanted, is the caller's ``peft`` model), on the course's tokens
    (:func:`preference_rows`: ``max_prompt``/``max_response`` cut as the course's loop cuts).

    config:     the course's POConfig (loss, beta, gamma, alpha, po_lr, po_epochs, batch_size per
                process and step, warmup share, seed)
    scheduler:  "course" (the course's loop's warm-up and decay: :class:`CourseSchedule`) or a
                transformers schedule name ("constant", "linear", ...)
    history:    filled while training, as the course's loop fills it ("po.loss", "po.margin",
                "po.accuracy" per update; with ``watch``, a function of no argument returning the
                held-out accuracy of the model being trained, "po.watch_step"/"po.watch_accuracy")
    copy_reference: give trl a copy of ``model`` as the reference for the precomputed log-probs
                (default: under an FSDP launch, where trl would otherwise load the reference from the
                model's hub id, the pretrained weights instead of the SFT copy; LoRA needs no copy);
                the copy is dropped once the log-probs are computed
    Gradients are not clipped, as in the course's loop. Refuses the ``nn.DataParallel`` fallback.
    """
    import datasets
    from trl import DPOConfig

    from w2s_helpers.core import store
    from w2s_helpers.core.models import refuse_data_parallel

    use_cpu = next(model.parameters()).device.type == "cpu" if use_cpu is None else use_cpu
    if not use_cpu:
        refuse_data_parallel()
    datasets.disable_progress_bars()
    rows = preference_rows(tokenizer, pairs, weak_label, conflict, max_prompt, max_response)
    train = _shared_rows_dataset(rows, "trl-po", use_cpu)
    out = output_dir or str(store.cache_dir("trl-po") / store.content_hash(rows, repr(config), length=20))
    args = DPOConfig(
        output_dir=out,
        beta=config.beta, loss_type=["sigmoid"], learning_rate=config.po_lr, num_train_epochs=config.po_epochs,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=grad_accum,
        lr_scheduler_type="linear" if scheduler == "course" else scheduler, warmup_steps=float(config.warmup),
        weight_decay=0.0, max_grad_norm=0.0, seed=config.seed, data_seed=config.seed, bf16=bf16,
        gradient_checkpointing=checkpointing, precompute_ref_log_probs=True, max_length=None, remove_unused_columns=False, use_cpu=use_cpu,
        save_strategy="steps" if save_steps > 0 else "no", save_steps=save_steps if save_steps > 0 else 500,
        save_total_limit=2,        # a whole model's checkpoint (weights and Adam's moments) is large
        report_to="none", disable_tqdm=True, logging_steps=10, dataloader_num_workers=0,
    )
    collator = _collator_class()(pad_token_id=tokenizer.pad_token_id)
    if copy_reference is None:
        copy_reference = fsdp_launch() and not hasattr(model, "peft_config")
    reference = copy.deepcopy(model) if copy_reference else None
    trainer = _trainer_class()(model=model, ref_model=reference, args=args, train_dataset=train,
                               processing_class=tokenizer, data_collator=collator, po=config)
    if reference is not None:           # its log-probs are in the dataset now; training never reads it
        trainer.ref_model = reference = None
    trainer.course_schedule, trainer.warmup = scheduler == "course", config.warmup
    trainer.history = history
    if watch is not None:
        cb = _watch_callback(watch, n_watch)
        cb.trainer = trainer
        trainer.add_callback(cb)
    return trainer


def _shared_rows_dataset(rows: list[dict], kind: str, use_cpu: bool):
    """``rows`` as a datasets.Dataset read from one file in the course cache that every process of a
    launch finds (rank 0 writes it first; trl's caches then live beside it)."""
    import json

    import datasets
    from accelerate import PartialState

    from w2s_helpers.core import store

    with PartialState(cpu=use_cpu).main_process_first():
        path = store.cache_dir(kind) / f"{store.content_hash(rows, length=20)}.jsonl"
        if not path.exists():
            store.atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))
        return datasets.Dataset.from_json(str(path), cache_dir=str(store.cache_dir(kind) / "datasets"))


def make_sft_trainer(model, tokenizer, pairs: Sequence[PreferencePair], label: torch.Tensor, config: POConfig,
                     output_dir: str | None = None, scheduler: str = "course", grad_accum: int = 1, bf16: bool = False,
                     checkpointing: bool = False, use_cpu: bool | None = None, max_prompt: int | None = None,
                     max_response: int | None = None, history: History | None = None):
    """trl's ``SFTTrainer`` on the preferred response of each pair (``label`` [N] True: the chosen,
    harmless side; else the rejected one), tokenised and cut by the course (:func:`completion_rows`):
    the course's :func:`~w2s_helpers.policies.training.sft`
    (completion-only loss, mean NLL per response token; sft_lr, sft_epochs, batch_size, warmup, seed;
    gradients not clipped; dropout switched off in ``model``, as the course's loop trains in eval mode)."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    class W2SSFTTrainer(CourseSchedule, SFTTrainer):
        """SFTTrainer with the course's learning-rate schedule when asked, logging "sft.loss" per
        micro-batch into ``history``."""

        def compute_loss(self, model, inputs, *args, **kwargs):
            out = super().compute_loss(model, inputs, *args, **kwargs)
            if model.training:
                record(self, "sft.loss", (out[0] if isinstance(out, tuple) else out).item())
            return out

    from w2s_helpers.core import store
    from w2s_helpers.core.models import refuse_data_parallel

    use_cpu = next(model.parameters()).device.type == "cpu" if use_cpu is None else use_cpu
    if not use_cpu:
        refuse_data_parallel()
    datasets.disable_progress_bars()
    for module in model.modules():     # dropout off, as DPOTrainer does by itself (SFTConfig has no such switch)
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    rows = completion_rows(tokenizer, pairs, label, max_prompt, max_response)
    train = _shared_rows_dataset(rows, "trl-sft", use_cpu)
    out = output_dir or str(store.cache_dir("trl-sft") / store.content_hash(rows, repr(config), length=20))
    args = SFTConfig(
        output_dir=out, learning_rate=config.sft_lr, num_train_epochs=config.sft_epochs,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=grad_accum,
        lr_scheduler_type="linear" if scheduler == "course" else scheduler, warmup_steps=float(config.warmup),
        weight_decay=0.0, max_grad_norm=0.0, seed=config.seed, data_seed=config.seed, bf16=bf16,
        gradient_checkpointing=checkpointing, completion_only_loss=True, max_length=None, use_cpu=use_cpu, save_strategy="no", report_to="none",
        disable_tqdm=True, logging_steps=10, dataloader_num_workers=0,
    )
    trainer = W2SSFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    trainer.course_schedule, trainer.warmup = scheduler == "course", config.warmup
    trainer.history = history        # "sft.loss" per update, as the course's loop logs it
    return trainer
