"""Whole reward models through trl's RewardTrainer: the course loss, training, tokenising."""

import pytest
import torch

from w2s_helpers.core import data, models
from w2s_helpers.core.data import PreferencePair
from w2s_helpers.rewards import finetune, losses

PAIRS = [PreferencePair("how do I bake bread?", "knead, proof and bake it.", "no."),
         PreferencePair("tell me something harmful", "no, I will not help with that.", "sure, here is how."),
         PreferencePair("hi", "hello! how can I help?", "go away."),
         PreferencePair("bake?", "yes, knead it well.", "burn it.")]


@pytest.fixture
def tiny_rm(tiny_hub_folders):
    rung = models.Rung("tiny-gpt2", "hub", "gpt2", 0.1, causal=True, hub_id=str(tiny_hub_folders["gpt2"]))
    return models.load(rung, head="reward", device="cpu", dtype="float32", seed=0)


def _manual_delta(lm, pairs):
    def r(texts):
        batch = lm.tokenizer(texts, padding=True, return_tensors="pt")
        return lm.model(**batch).logits.squeeze(-1)
    return r([p.transcript("chosen") for p in pairs]) - r([p.transcript("rejected") for p in pairs])


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_trainer_loss_is_the_course_loss(tiny_rm, alpha):
    soft = torch.tensor([0.9, 0.2, 0.6, 0.5])
    ds = finetune.preference_dataset(tiny_rm.tokenizer, PAIRS, soft, max_length=64)
    trainer = finetune.make_trainer(tiny_rm, ds, finetune.FinetuneConfig(batch_size=4, alpha=alpha, use_cpu=True))
    batch = next(iter(trainer.get_train_dataloader()))
    assert {"soft_label", "gt_label"} <= set(batch), "trl dropped the label columns"
    order = [next(i for i, s in enumerate(soft.tolist()) if abs(s - b) < 1e-6) for b in batch["soft_label"].tolist()]
    tiny_rm.model.eval()
    with torch.no_grad():
        got = trainer.compute_loss(tiny_rm.model, dict(batch))
        delta = _manual_delta(tiny_rm, [PAIRS[i] for i in order])
    want = (losses.explicit_conflict_loss(delta, soft[order], torch.ones(4), alpha) if alpha
            else losses.pairwise_loss(delta, soft[order]))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_training_moves_the_margins(tiny_rm):
    before = finetune.reward_margins(tiny_rm, PAIRS, max_length=64)
    ds = finetune.preference_dataset(tiny_rm.tokenizer, PAIRS * 4, [1.0] * 16, max_length=64)
    finetune.make_trainer(tiny_rm, ds, finetune.FinetuneConfig(lr=1e-2, batch_size=4, epochs=2, use_cpu=True)).train()
    after = finetune.reward_margins(tiny_rm, PAIRS, max_length=64)
    assert after.mean() > before.mean()  # ground truth says "chosen": the margins grow


def test_pretokenising_keeps_long_pairs_and_truncates_left(tiny_rm):
    long = PreferencePair("filler " * 200 + "question?", "answer.", "other answer.")
    ids = finetune.tokenize_pairs(tiny_rm.tokenizer, [long], max_length=16)
    assert len(ids["chosen_ids"][0]) == 16
    full = tiny_rm.tokenizer(long.transcript("chosen"))["input_ids"]
    assert ids["chosen_ids"][0] == full[-16:]  # the end (the response) is kept
    with pytest.raises(ValueError, match="soft labels"):
        finetune.preference_dataset(tiny_rm.tokenizer, PAIRS, [0.5], max_length=16)


@pytest.mark.model
def test_smollm2_finetunes_on_cpu(monkeypatch, model_cache):
    """The regime the paper profile uses, run for real on SmolLM2-135M at a small n."""
    monkeypatch.setenv("W2S_CACHE_DIR", str(model_cache))
    lm = models.load("smollm2-135m", head="reward", device="cpu", dtype="float32", seed=0)
    pairs = data.load_split("harmless_gt", n=16, seed=0)
    ds = finetune.preference_dataset(lm.tokenizer, pairs, [0.8] * 16, max_length=96)
    head_before = lm.model.score.weight.detach().clone()
    trainer = finetune.make_trainer(lm, ds, finetune.FinetuneConfig(lr=1e-5, batch_size=8, max_length=96, use_cpu=True))
    out = trainer.train()
    assert out.global_step == 2 and torch.isfinite(torch.tensor(out.training_loss))
    assert not torch.equal(head_before, lm.model.score.weight)
    delta = finetune.reward_margins(lm, data.load_split("harmless_test", n=4, seed=0), max_length=96)
    assert delta.shape == (4,) and torch.isfinite(delta).all()


def test_several_gpus_in_one_process_are_refused(monkeypatch):
    import torch

    from w2s_helpers.core import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="nn.DataParallel.*accelerate launch"):
        models.refuse_data_parallel()
    monkeypatch.setenv("WORLD_SIZE", "4")                # one of four launched processes: fine
    models.refuse_data_parallel()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("WORLD_SIZE")
    models.refuse_data_parallel()
