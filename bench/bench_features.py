"""Feature-extraction throughput: our extractor against a naive loop, measured in one run.

    python bench/bench_features.py [--rungs minilm-l6 smollm2-135m] [--n 128] [--threads 1 2]

For each rung and thread count it times, on the same real HH transcripts:
  naive     one text at a time, fp32, file order (what a first attempt looks like)
  ours-fp32 features.compute: length batches (--batch rows, --batch-tokens tokens), fp32 weights
  ours-bf16 the same with bf16 weights
and prints tokens/s, the ratio to naive, and the share of this machine's matmul peak in the
same dtype (measured by the same script) that the model's FLOPs (2 x non-embedding parameters
per token) reach. The row marked "auto" is the precision the profiles' default picks on this
machine (w2s_helpers.core.precision), with its reason. Where bf16 is emulated (its matmul peak
under a tenth of fp32's) the bf16 row is timed on --emulated-n texts only, and says so.
Timings vary with what else the machine is doing: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from w2s_helpers.core import data, features, models, precision
from w2s_helpers.core.features import FeatureSpec


def matmul_gflops(dtype: str) -> float:
    """This machine's matmul peak in ``dtype`` (1024^3, best of repeats, current threads)."""
    return precision.measure_matmul(dtype, m=1024, k=1024, n=1024, budget_s=1.0)


@torch.inference_mode()
def naive(lm, texts: list[str], max_length: int) -> torch.Tensor:
    out = []
    for t in texts:
        batch = lm.tokenizer(t, truncation=True, max_length=max_length, return_tensors="pt")
        h = lm.model(**batch).last_hidden_state
        out.append(features.pool(h, batch["attention_mask"], "last"))
    return torch.cat(out)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def non_embedding_params(model) -> int:
    emb = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    return sum(p.numel() for p in model.parameters()) - emb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rungs", nargs="+", default=["minilm-l6", "smollm2-135m"])
    ap.add_argument("--n", type=int, default=128, help="texts per measurement (real HH transcripts)")
    ap.add_argument("--emulated-n", type=int, default=4, help="texts for a bf16 row where bf16 is emulated")
    ap.add_argument("--batch", type=int, default=32, help="rows per batch at most (the ci/laptop profiles': 32)")
    ap.add_argument("--batch-tokens", type=int, default=2048, help="padded tokens per batch at most (profiles: 2048)")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    pairs = data.load_split("harmless_test", n=args.n // 2, seed=0)
    texts = [p.transcript("chosen") for p in pairs] + [p.transcript("rejected") for p in pairs]
    print(f"{len(texts)} real HH transcripts, max_length {args.max_length}, batch {args.batch}")
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        auto = precision.choose("cpu")
        peak = {dt: matmul_gflops(dt) for dt in ("float32", "bfloat16")}
        emulated = peak["bfloat16"] < peak["float32"] / 10
        print(f"\n== {threads} thread(s): matmul peak fp32 {peak['float32']:.1f} GFLOP/s, bf16 {peak['bfloat16']:.1f} "
              f"GFLOP/s{' (bf16 emulated)' if emulated else ''}\n   auto picks {auto.dtype}: {auto.reason}")
        for name in args.rungs:
            lm = models.load(name, device="cpu", dtype="float32")
            lm16 = models.load(name, device="cpu", dtype="bfloat16")
            tok = lm.tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
            flops_per_tok = 2 * non_embedding_params(lm.model)
            naive(lm, texts[:2], args.max_length)  # warm-up
            t_naive, ref = timed(lambda: naive(lm, texts, args.max_length))
            tps_naive = sum(map(len, tok)) / t_naive
            results = {"naive": (tps_naive, "float32", len(texts))}
            for label, dtype, model in (("ours-fp32", "float32", lm.model), ("ours-bf16", "bfloat16", lm16.model)):
                sub = texts[: args.emulated_n] if dtype == "bfloat16" and emulated else texts
                spec = FeatureSpec(pooling="last", max_length=args.max_length, dtype=dtype, batch_size=args.batch,
                                   batch_tokens=args.batch_tokens)
                features.compute(model, lm.tokenizer, sub[:2], spec, progress=False)  # warm-up
                t, x = timed(lambda: features.compute(model, lm.tokenizer, sub, spec, progress=False))
                cos = torch.nn.functional.cosine_similarity(x, ref[: len(sub)]).min().item()
                results[label] = (sum(map(len, tok[: len(sub)])) / t, dtype, len(sub))
                print(f"   {name:>13} {label:>9}: min cosine to naive fp32 {cos:.5f}")
            for label, (tps, dtype, n) in results.items():
                share = tps * flops_per_tok / 1e9 / peak[dtype] if not (emulated and dtype == "bfloat16") else float("nan")
                mark = "auto" if label != "naive" and dtype == auto.dtype else ""
                rows.append((threads, name, label, tps, tps / tps_naive, share, n, mark))
                print(f"   {name:>13} {label:>9}: {tps:8.0f} tok/s  x{tps / tps_naive:6.2f} vs naive  "
                      f"{100 * share:5.1f}% of {dtype} matmul peak  ({n} texts) {mark}"
                      + (" (bf16 emulated: a share of its peak means nothing)" if share != share else ""))
    print(f"\nmachine: {precision.cpu_name()}, {os.cpu_count()} "
          f"cores, bf16 flags {precision.cpu_bf16_flags() or 'none'}, torch {torch.__version__} "
          f"({torch.backends.cpu.get_cpu_capability()} kernels)")
    print("threads rung           run          tok/s  vs-naive  %peak  texts")
    for threads, name, label, tps, ratio, share, n, mark in rows:
        print(f"{threads:>7} {name:<14} {label:<10} {tps:8.0f}  {ratio:8.2f}  {100 * share:5.1f}  {n:5d}  {mark}")


if __name__ == "__main__":
    main()
