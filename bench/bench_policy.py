"""Benchmark: LoRA DPO steps per second for chapter 4's policies, three ways, in one run.

    python bench/bench_policy.py [--rungs smollm2-135m qwen2.5-0.5b] [--steps 3] [--batch 8]

For each rung, on the same real D_w2s pairs (prompt <= 48, response <= 32 tokens, as the laptop
profile), one DPO step (forward, backward, AdamW) of:

  whole, ref recomputed   LoRA (peft) on every block of the whole model; the reference (the same
                          model with the adapter off) is run again in every step
  whole, ref precomputed  the same, with reference log-probs computed once beforehand
  top blocks (course)     LoRA on the top k blocks over cached inputs of block L-k, reference
                          precomputed (what chapter 4 trains)

Speed-ups are ratios against "whole, ref recomputed" measured in the same run. The one-off
costs (reference log-probs, activations) are reported per pair, so they can be weighed against
the number of steps that reuse them.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from w2s_helpers.core import data, decoder, models
from w2s_helpers.core.batching import pad_ids
from w2s_helpers.policies import encoding, logps, training
from w2s_helpers.policies.policy import TopBlocksPolicy, sequence_logps


def whole_logps(model, enc: encoding.Encoded, rows) -> torch.Tensor:
    ids = [enc.ids[r] for r in rows]
    x, mask = pad_ids(ids, 0)
    states = model.base_model.model.model(input_ids=x, attention_mask=mask, use_cache=False).last_hidden_state
    return logps.token_logps(states, model.base_model.model.get_output_embeddings().weight, ids, enc.starts[rows])


def timed(fn, steps: int) -> float:
    fn()                                        # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps


def bench_rung(rung: str, pairs, steps: int, batch: int, k: int) -> dict[str, float]:
    from peft import LoraConfig, get_peft_model

    L = models.load(rung, head="causal", dtype="float32", device="cpu")
    enc = encoding.encode_pairs(L.tokenizer, pairs[:batch], max_prompt=48, max_response=32)
    rows = list(range(2 * batch))
    first = torch.ones(batch, dtype=torch.bool)
    lengths = encoding.pair_lengths(enc).float()
    cfg = training.POConfig.for_loss("dpo")
    out: dict[str, float] = {}

    # whole model with LoRA on every block
    torch.manual_seed(0)
    whole = get_peft_model(copy.deepcopy(L.model), LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                              target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                              "gate_proj", "up_proj", "down_proj"]))
    opt = torch.optim.AdamW([p for p in whole.parameters() if p.requires_grad], lr=1e-4)

    def ref_now():
        with torch.no_grad(), whole.disable_adapter():
            lp = whole_logps(whole, enc, rows)
        return torch.stack([lp[:batch], lp[batch:]], 1)

    def step(ref):
        lp = whole_logps(whole, enc, rows)
        loss = training.po_loss(torch.stack([lp[:batch], lp[batch:]], 1), ref() if callable(ref) else ref, lengths, first, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    ref = ref_now()
    out["reference s/pair"] = (time.perf_counter() - t0) / batch
    out["whole, ref recomputed"] = timed(lambda: step(ref_now), steps)
    out["whole, ref precomputed"] = timed(lambda: step(ref), steps)
    del whole, opt

    # the course's top blocks
    t0 = time.perf_counter()
    acts = encoding.Cached(enc, decoder.activations_of_ids(L.model, enc.ids, k, L.tokenizer.pad_token_id, progress=False))
    out["activations s/pair"] = (time.perf_counter() - t0) / batch
    policy = TopBlocksPolicy(L.model, k)
    peft_policy = training.with_lora(policy, cfg, 0)
    opt = torch.optim.AdamW([p for p in peft_policy.parameters() if p.requires_grad], lr=1e-4)
    ref_top = sequence_logps(policy, acts)

    def top_step():
        lp = policy.logps(*acts.batch(rows))
        loss = training.po_loss(torch.stack([lp[:batch], lp[batch:]], 1), ref_top, lengths, first, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()

    out[f"top {k} blocks (course)"] = timed(top_step, steps)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rungs", nargs="+", default=["smollm2-135m", "qwen2.5-0.5b"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--k", type=int, default=2)
    args = ap.parse_args()
    pairs = data.load_split("harmless_w2s", n=64, seed=1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; DPO step on {args.batch} pairs "
          f"(prompt <= 48, response <= 32 tokens), mean of {args.steps} steps after one warm-up")
    for rung in args.rungs:
        r = bench_rung(rung, pairs, args.steps, args.batch, args.k)
        base = r["whole, ref recomputed"]
        print(f"\n{rung}")
        for name in ("whole, ref recomputed", "whole, ref precomputed", f"top {args.k} blocks (course)"):
            print(f"  {name:26s} {1 / r[name]:7.3f} steps/s  {r[name]:7.2f} s/step  {base / r[name]:5.2f}x")
        print(f"  one-off: reference log-probs {r['reference s/pair']:.3f} s/pair, "
              f"activations below the top {args.k} blocks {r['activations s/pair']:.3f} s/pair")


if __name__ == "__main__":
    main()
