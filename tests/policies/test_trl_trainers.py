"""Whole policies through trl's DPOTrainer (the paper-scale engine) against the course's own loop."""

import torch
from conftest import free_port

from w2s_helpers.policies import encoding, training, trl_trainers
from w2s_helpers.policies.policy import WholePolicy, sequence_logps

from .stand_ins import PAIRS, tiny_lm

WEAK = torch.tensor([True, False, True, True, False, True])        # hard weak labels: two pairs flipped


def course_and_trl(folders, alpha=0.0, conflict=None):
    """(before, course, trl): summed log-probs [N, 2] of the SFT model and of the two trained copies
    (three updates of the whole batch, the course's learning-rate schedule in both)."""
    lm = tiny_lm(folders, "gpt2")
    data = encoding.Tokens(encoding.encode_pairs(lm.tokenizer, PAIRS), lm.tokenizer.pad_token_id)
    cfg = training.POConfig.for_loss("dpo", alpha=alpha, lora_r=0, po_lr=1e-2, po_epochs=3, batch_size=len(PAIRS))
    before = sequence_logps(WholePolicy(lm.model), data)
    course = training.preference_optimise(WholePolicy(lm.model), data, WEAK, cfg, conflict=conflict, progress=False)
    model = WholePolicy(lm.model).lm
    trainer = trl_trainers.make_po_trainer(model, lm.tokenizer, PAIRS, WEAK, cfg, conflict=conflict)
    trainer.train()
    assert trainer.lr_scheduler.get_last_lr()[0] == 0.0             # the course's schedule ran to its end
    return before, sequence_logps(course, data), sequence_logps(WholePolicy(trainer.model.eval()), data)


def test_trl_tokenises_as_the_course_does(tiny_hub_folders):
    lm = tiny_lm(tiny_hub_folders, "gpt2")
    enc = encoding.encode_pairs(lm.tokenizer, PAIRS)
    trainer = trl_trainers.make_po_trainer(WholePolicy(lm.model).lm, lm.tokenizer, PAIRS, WEAK,
                                            training.POConfig.for_loss("dpo", lora_r=0))
    ds = trainer.train_dataset
    n = len(PAIRS)
    for i in range(n):
        assert ds[i]["prompt_ids"] + ds[i]["chosen_ids"] == enc.ids[i]
        assert ds[i]["prompt_ids"] + ds[i]["rejected_ids"] == enc.ids[n + i]
        assert len(ds[i]["prompt_ids"]) == int(enc.starts[i])


def test_trl_dpo_trains_the_course_s_policy(tiny_hub_folders):
    before, course, trl = course_and_trl(tiny_hub_folders)
    moved = (course - before).abs().max().item()
    assert moved > 0.1                                                # training did something
    torch.testing.assert_close(trl, course, rtol=0, atol=1e-3 * moved)
    # the weak labels, not ground truth, were learnt: the flipped pairs moved toward the harmful side
    shift = (course[:, 0] - course[:, 1]) - (before[:, 0] - before[:, 1])
    assert (shift[~WEAK] < 0).all() and (shift[WEAK] > 0).all()


def test_trl_dpo_explicit_term_matches_the_course_s(tiny_hub_folders):
    conflict = torch.tensor([True, True, False, True, True, False])
    before, plain, _ = course_and_trl(tiny_hub_folders)
    _, course, trl = course_and_trl(tiny_hub_folders, alpha=5.0, conflict=conflict)
    moved = (course - before).abs().max().item()
    torch.testing.assert_close(trl, course, rtol=0, atol=1e-3 * moved)
    assert (course - plain).abs().max() > 1e-2 * moved               # the term changed the policy


SCRIPT = '''
import json, sys
import torch
from accelerate import PartialState
from safetensors.torch import save_file
from w2s_helpers.core import models
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.policies import encoding, training, trl_trainers
from w2s_helpers.policies.policy import WholePolicy, sequence_logps

folder, pairs_file, out = sys.argv[1:4]
state = PartialState(cpu=True)
pairs = [PreferencePair(*row) for row in json.load(open(pairs_file))]
weak = torch.tensor(json.load(open(pairs_file + ".weak")))
lm = models.load(models.Rung("tiny-gpt2", "hub", "gpt2", 0.1, causal=True, hub_id=folder), head="causal",
                 device="cpu", dtype="float32")
cfg = training.POConfig.for_loss("dpo", alpha=5.0, lora_r=0, po_lr=1e-2, po_epochs=2,
                                 batch_size=len(pairs) // state.num_processes, warmup=0.0)
trainer = trl_trainers.make_po_trainer(WholePolicy(lm.model).lm, lm.tokenizer, pairs, weak, cfg, scheduler="constant",
                                        use_cpu=True)
trainer.train()
if state.is_main_process:
    data = encoding.Tokens(encoding.encode_pairs(lm.tokenizer, pairs), lm.tokenizer.pad_token_id)
    save_file({"logps": sequence_logps(WholePolicy(trainer.model), data)}, out)
print("processes", state.num_processes, "batch per process", cfg.batch_size, flush=True)
if torch.distributed.is_initialized():      # (left to exit, gloo's threads once aborted a rank: "terminate called")
    torch.distributed.destroy_process_group()
'''


def test_two_processes_under_accelerate_train_the_policy_one_process_trains(tiny_hub_folders, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    script, pairs_file = tmp_path / "train.py", tmp_path / "pairs.json"
    script.write_text(SCRIPT)
    pairs_file.write_text(json.dumps([[p.prompt, p.chosen, p.rejected, p.source] for p in PAIRS]))
    Path(str(pairs_file) + ".weak").write_text(json.dumps(WEAK.tolist()))
    config = Path(__file__).resolve().parents[2] / "configs" / "accelerate" / "cpu_2_processes.yaml"
    logps = {}
    for n, launch in ((1, [sys.executable]),
                      (2, [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                          "--main_process_port", free_port()])):
        out = tmp_path / f"logps-{n}.safetensors"
        run = subprocess.run(launch + [str(script), str(tiny_hub_folders["gpt2"]), str(pairs_file), str(out)],
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert f"processes {n} batch per process {len(PAIRS) // n}" in run.stdout
        logps[n] = load_file(str(out))["logps"]
    lm = tiny_lm(tiny_hub_folders, "gpt2")
    data = encoding.Tokens(encoding.encode_pairs(lm.tokenizer, PAIRS), lm.tokenizer.pad_token_id)
    before = sequence_logps(WholePolicy(lm.model), data)
    moved = (logps[1] - before).abs().max().item()
    assert moved > 0.1
    torch.testing.assert_close(logps[2], logps[1], rtol=0, atol=1e-3 * moved)       # seen: equal to the bit
    # a wrong split would show: updates of 3 pairs instead of 6 end far from the one-process policy
    cfg = training.POConfig.for_loss("dpo", alpha=5.0, lora_r=0, po_lr=1e-2, po_epochs=2, batch_size=3, warmup=0.0)
    half = sequence_logps(training.preference_optimise(WholePolicy(lm.model), data, WEAK, cfg, progress=False), data)
    assert (half - logps[1]).abs().max().item() > 1e-2 * moved


def trained_both_ways(folders, cfg, course_step, make_trainer, max_prompt=None, max_response=None):
    """(before, course, trl): log-probs [N, 2] of the base model and of its copies trained by the course's
    ``course_step`` and by trl's ``make_trainer`` (constant learning rate), on pairs cut to
    ``max_prompt``/``max_response`` tokens (scored on the same cut pairs)."""
    lm = tiny_lm(folders, "gpt2")
    data = encoding.Tokens(encoding.encode_pairs(lm.tokenizer, PAIRS, max_prompt, max_response), lm.tokenizer.pad_token_id)
    before = sequence_logps(WholePolicy(lm.model), data)
    course = sequence_logps(course_step(WholePolicy(lm.model), data, WEAK, cfg, progress=False), data)
    trainer = make_trainer(WholePolicy(lm.model).lm, lm.tokenizer, PAIRS, WEAK, cfg, scheduler="constant",
                           max_prompt=max_prompt, max_response=max_response)
    trainer.train()
    return before, course, sequence_logps(WholePolicy(trainer.model.eval()), data)


def test_trl_simpo_trains_the_course_s_policy(tiny_hub_folders):
    cfg = training.POConfig.for_loss("simpo", alpha=0.5, lora_r=0, po_lr=1e-2, po_epochs=2, batch_size=len(PAIRS),
                                     warmup=0.0)
    before, course, trl = trained_both_ways(tiny_hub_folders, cfg, training.preference_optimise,
                                            trl_trainers.make_po_trainer)
    moved = (course - before).abs().max().item()
    assert moved > 0.1
    torch.testing.assert_close(trl, course, rtol=0, atol=1e-3 * moved)


def test_trl_sft_trains_the_course_s_sft_policy(tiny_hub_folders):
    cfg = training.POConfig.for_loss("dpo", lora_r=0, sft_lr=1e-2, sft_epochs=2, batch_size=len(PAIRS), warmup=0.0)
    before, course, trl = trained_both_ways(tiny_hub_folders, cfg, training.sft, trl_trainers.make_sft_trainer)
    moved = (course - before).abs().max().item()
    assert moved > 0.1
    torch.testing.assert_close(trl, course, rtol=0, atol=1e-3 * moved)
    # SFT on the weak labels' preferred side: the responses it trained on gained more than the others
    gain = course - before
    trained = torch.where(WEAK, gain[:, 0], gain[:, 1])
    other = torch.where(WEAK, gain[:, 1], gain[:, 0])
    assert trained.mean() > other.mean()


def test_trl_trains_on_the_course_s_cut_pairs(tiny_hub_folders):
    # prompts cut to their last 3 tokens and responses to their first 4, in both stages: trl sees
    # the tokens the course's loop sees, so SFT then SimPO end at the same policy
    lm = tiny_lm(tiny_hub_folders, "gpt2")
    cut = encoding.encode_pairs(lm.tokenizer, PAIRS, 3, 4)
    full = encoding.encode_pairs(lm.tokenizer, PAIRS)
    assert cut.ids != full.ids                                        # the cuts bite on these pairs
    rows = trl_trainers.preference_rows(lm.tokenizer, PAIRS, WEAK, max_prompt=3, max_response=4)
    n = len(PAIRS)
    assert [r["prompt_ids"] + r["chosen_ids"] for r in rows] == cut.ids[:n]
    assert [r["prompt_ids"] + r["rejected_ids"] for r in rows] == cut.ids[n:]
    cfg = training.POConfig.for_loss("dpo", lora_r=0, sft_lr=1e-2, sft_epochs=2, batch_size=len(PAIRS), warmup=0.0)
    for step, make in ((training.sft, trl_trainers.make_sft_trainer),
                       (training.preference_optimise, trl_trainers.make_po_trainer)):
        before, course, trl = trained_both_ways(tiny_hub_folders, cfg, step, make, max_prompt=3, max_response=4)
        moved = (course - before).abs().max().item()
        assert moved > 0.1
        torch.testing.assert_close(trl, course, rtol=0, atol=1e-3 * moved)


def test_a_copied_reference_is_the_sft_copy_and_is_dropped(tiny_hub_folders):
    # under FSDP trl would load its reference from the model's hub id; the course gives it a copy
    # of the model as it is (here: weights moved away from the pretrained ones, as SFT does)
    lm = tiny_lm(tiny_hub_folders, "gpt2")
    data = encoding.Tokens(encoding.encode_pairs(lm.tokenizer, PAIRS), lm.tokenizer.pad_token_id)
    pretrained = sequence_logps(WholePolicy(lm.model), data)
    with torch.no_grad():
        for p in lm.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    sft = sequence_logps(WholePolicy(lm.model), data)
    assert (sft - pretrained).abs().max() > 0.1
    trainer = trl_trainers.make_po_trainer(WholePolicy(lm.model).lm, lm.tokenizer, PAIRS, WEAK,
                                            training.POConfig.for_loss("dpo", lora_r=0), copy_reference=True)
    ds = trainer.train_dataset
    ref = torch.tensor([[r["ref_chosen_logps"], r["ref_rejected_logps"]] for r in ds])
    torch.testing.assert_close(ref, sft, rtol=0, atol=1e-4)
    assert trainer.ref_model is None
    assert not trl_trainers.fsdp_launch()                  # (the default copies only under an FSDP launch)
