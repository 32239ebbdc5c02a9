"""Benchmark for a GPU machine: the paper-scale engines on real models, against the memory estimate.

    python bench/bench_scale.py                          # SmolLM2-135M and Qwen2.5-0.5B (offline rungs)
    python bench/bench_scale.py --rungs gpt2 gpt2-large  # the paper's GPT-2 rungs, where the hub is reachable
    python bench/bench_scale.py --pairs 16 --max-length 128   # a quick check (what a CPU machine can do)

For each rung, on real D_w2s pairs, in one run:

  matmul limit     a large square matmul in the run's dtype: the FLOP/s this device reaches at best
  reward model     one job of w2s_helpers.rewards.jobs (trl's RewardTrainer, the course's loss), --pairs
                   pairs, batch 8: pairs per second, achieved FLOP/s (6 x params x tokens) and its
                   share of the matmul limit, peak memory against w2s_helpers.core.memory's estimate
  DPO policy       w2s_helpers.policies.trl_trainers (trl's DPOTrainer, the course's loss), the same
                   pairs: the same figures (the reference pass is timed apart)

The ratios are to the matmul limit measured in the same run. Peak memory comes from
``torch.cuda.max_memory_allocated`` (on a CPU it is not available and left out). Nothing is
saved; the figures are printed as a table to paste into the README.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

import torch

from w2s_helpers.core import data, memory, models, store
from w2s_helpers.core.data import PreferencePair


def matmul_limit(device: str, dtype: torch.dtype, n: int) -> float:
    """FLOP/s of n x n matmuls (best of a few), the run's reference for 'the machine's limit'."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        sync(device)
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t) / 4)
    return 2 * n ** 3 / best


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / memory.GIB if device == "cuda" else None


def n_tokens(tokenizer, pairs: list[PreferencePair], max_length: int) -> int:
    from w2s_helpers.rewards.finetune import tokenize_pairs

    ids = tokenize_pairs(tokenizer, pairs, max_length)
    return sum(map(len, ids["chosen_ids"])) + sum(map(len, ids["rejected_ids"]))


def bench_reward(rung: str, pairs, max_length: int, bf16: bool, device: str) -> dict:
    from w2s_helpers.rewards import jobs

    spec = jobs.rung_spec(rung)
    job = jobs.Job(rung=spec, pools=jobs.write_pools({"w2s": pairs}), parts=(("w2s", tuple(range(len(pairs))),
                                                                               (1.0,) * len(pairs)),),
                   seed=0, alpha=0.0, score=(), config={"lr": 1e-5, "batch_size": 8, "epochs": 1,
                                                          "max_length": max_length, "bf16": bf16})
    lm = models.load(rung, head="reward", device="cpu", dtype="float32")
    params, cfg, tok = lm.n_params, lm.model.config, lm.tokenizer
    del lm
    reset_peak(device)
    t = time.perf_counter()
    jobs.run(job, verbose=False)
    sync(device)
    seconds = time.perf_counter() - t
    est = memory.estimate(memory.Shape.of(cfg), batch=16, seq_len=max_length, weight_bytes=4)
    return {"seconds": seconds, "pairs/s": len(pairs) / seconds,
            "flops": 6 * params * n_tokens(tok, pairs, max_length) / seconds,
            "peak GiB": peak_gib(device), "estimate GiB": est["total"]}


def bench_dpo(rung: str, pairs, max_length: int, bf16: bool, device: str) -> dict:
    from w2s_helpers.policies import training, trl_trainers

    lm = models.load(rung, head="causal", device=device, dtype="float32")
    model = copy.deepcopy(lm.model)
    cfg = training.POConfig.for_loss("dpo", lora_r=0, po_lr=1e-6, batch_size=8)
    reset_peak(device)
    t = time.perf_counter()
    trainer = trl_trainers.make_po_trainer(model, lm.tokenizer, pairs, torch.ones(len(pairs), dtype=torch.bool),
                                            cfg, output_dir=tempfile.mkdtemp(prefix="w2s-bench-"), bf16=bf16)
    sync(device)
    ref_seconds = time.perf_counter() - t                  # tokenising and the reference pass
    t = time.perf_counter()
    trainer.train()
    sync(device)
    seconds = time.perf_counter() - t
    tokens = sum(len(x["prompt_ids"]) * 2 + len(x["chosen_ids"]) + len(x["rejected_ids"]) for x in trainer.train_dataset)
    est = memory.estimate(memory.Shape.of(lm.model.config), batch=16, seq_len=max_length, weight_bytes=4)
    return {"seconds": seconds, "reference s": ref_seconds, "pairs/s": len(pairs) / seconds,
            "flops": 6 * lm.n_params * tokens / seconds, "peak GiB": peak_gib(device), "estimate GiB": est["total"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rungs", nargs="+", default=["smollm2-135m", "qwen2.5-0.5b"])
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--matmul", type=int, default=8192, help="size of the matmul that measures the limit")
    args = ap.parse_args()

    device = models.resolve_device("auto")
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    os.environ.setdefault(store.CACHE_ENV, tempfile.mkdtemp(prefix="w2s-bench-cache-"))  # nothing kept
    pairs = data.subset(data.load_split("harmless_w2s"), args.pairs, seed=0)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    limit = matmul_limit(device, dtype, args.matmul if device == "cuda" else min(args.matmul, 2048))
    print(f"device: {name}; mixed precision: {'bf16' if bf16 else 'none (fp32)'}; {args.pairs} pairs, "
          f"max length {args.max_length}; matmul limit {limit / 1e12:.2f} TFLOP/s ({str(dtype)[6:]})", flush=True)
    rows = []
    for rung in args.rungs:
        models.prepare(rung, install_missing=True)
        for what, fn in (("reward model", bench_reward), ("DPO policy", bench_dpo)):
            r = fn(rung, pairs, args.max_length, bf16, device)
            rows.append((rung, what, r))
            print(f"{rung} {what}: {r['pairs/s']:.1f} pairs/s, {r['flops'] / 1e12:.2f} TFLOP/s "
                  f"({r['flops'] / limit:.0%} of the matmul limit)", flush=True)
    print("\n| rung | engine | pairs/s | TFLOP/s | share of matmul limit | peak GiB | estimate GiB (fp32, batch 8) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for rung, what, r in rows:
        peak = "n/a" if r["peak GiB"] is None else f"{r['peak GiB']:.1f}"
        print(f"| {rung} | {what} | {r['pairs/s']:.1f} | {r['flops'] / 1e12:.2f} | {r['flops'] / limit:.0%} | "
              f"{peak} | {r['estimate GiB']:.1f} |")


if __name__ == "__main__":
    main()
