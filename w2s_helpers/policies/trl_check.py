"""trl's own losses on one batch, to check the course's: DPOTrainer, CPOTrainer (SimPO), SFTTrainer.

No training happens: each trainer only builds its batch and calls ``compute_loss``. The
course's losses on the same batch are in :mod:`w2s_helpers.policies.training` and
:mod:`w2s_helpers.policies.logps`; tests and chapter 4 compare the two.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from w2s_helpers.core.data import PreferencePair
from w2s_helpers.policies.encoding import prompt_text


def trl_loss(model: nn.Module, tokenizer, pairs: Sequence[PreferencePair], loss: Literal["dpo", "simpo"],
             ref_model: nn.Module | None = None, beta: float | None = None, gamma: float = 1.0) -> float:
    """trl's own loss on one batch holding all ``pairs`` (chosen = the data's chosen side).

    DPO: ``trl.DPOTrainer`` (sigmoid loss) with ``ref_model`` as the reference. SimPO:
    ``trl.experimental.cpo.CPOTrainer`` with ``loss_type="simpo"`` and ``cpo_alpha=0``.
    No training happens: the trainer only builds its batch and calls ``compute_loss``.
    """
    import copy
    import tempfile
    import warnings

    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()
    rows = [{"prompt": prompt_text(p), "chosen": " " + p.chosen, "rejected": " " + p.rejected} for p in pairs]
    common = dict(per_device_train_batch_size=len(pairs), bf16=False, report_to="none", max_length=None,
                  use_cpu=next(model.parameters()).device.type == "cpu", remove_unused_columns=False)
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if loss == "dpo":
            from trl import DPOConfig, DPOTrainer

            if ref_model is None:
                raise ValueError("DPO needs a reference model (the SFT copy)")
            args = DPOConfig(output_dir=out, beta=0.1 if beta is None else beta, loss_type=["sigmoid"],
                             gradient_checkpointing=False, **common)
            trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=Dataset.from_list(rows),
                                 processing_class=tokenizer)
        elif loss == "simpo":
            from trl.experimental.cpo import CPOConfig, CPOTrainer

            # CPOTrainer prepends BOS to the prompt, DPOTrainer does not; the course encodes as
            # DPOTrainer does, so CPOTrainer gets a tokenizer copy without BOS: same tokens.
            tokenizer = copy.deepcopy(tokenizer)
            tokenizer.bos_token = None
            args = CPOConfig(output_dir=out, beta=2.0 if beta is None else beta, loss_type="simpo", cpo_alpha=0.0,
                             simpo_gamma=gamma, max_completion_length=None,
                             **{**common, "max_length": 2048})   # None reads as 512 here; the pairs are cut already
            trainer = CPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                 processing_class=tokenizer)
        else:
            raise ValueError(f"loss must be 'dpo' or 'simpo', got {loss!r}")
        batch = next(iter(trainer.get_train_dataloader()))
        model.eval()
        with torch.no_grad():
            value = trainer.compute_loss(trainer.model, batch)
    return float(value)


def trl_sft_loss(model: nn.Module, tokenizer, pairs: Sequence[PreferencePair]) -> float:
    """trl's ``SFTTrainer`` loss (completion-only, mean over response tokens) on one batch of the
    pairs' chosen responses; the course's SFT loss on the same batch is
    ``-full_logps(model, enc)[:, 0].sum() / pair_lengths(enc)[:, 0].sum()``."""
    import tempfile
    import warnings

    import datasets
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    datasets.disable_progress_bars()
    rows = [{"prompt": prompt_text(p), "completion": " " + p.chosen} for p in pairs]
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = SFTConfig(output_dir=out, per_device_train_batch_size=len(pairs), bf16=False, report_to="none",
                         max_length=None, use_cpu=next(model.parameters()).device.type == "cpu",
                         gradient_checkpointing=False, completion_only_loss=True)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
        batch = next(iter(trainer.get_train_dataloader()))
        model.eval()
        with torch.no_grad():
            value = trainer.compute_loss(trainer.model, batch)
    return float(value)
