"""Feature-extraction throughput: our extractor against a naive loop, measured in one run.

    python bench/bench_features.py [--rungs minilm-l6 smollm2-135m] [--n 128] [--threads 1 2]

For each rung and thread count it times, on the same real HH transcripts:
  naive     one text at a time, fp32, file order (what a first attempt looks like)
  ours-fp32 sorted by length, batches of --batch, fp32
  ours      sorted by length, batches of --batch, bf16 weights (the profiles' default)
and prints tokens/s, the ratio to naive, and the share of this machine's matmul
throughput (measured by the same script, same dtype) that the model's FLOPs reach.
Timings vary with what else the machine is doing: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import time

import torch

from w2s_helpers import data, features, models
from w2s_helpers.features import FeatureSpec


def matmul_gflops(dtype: torch.dtype, size: int = 1024, reps: int = 10) -> float:
    """Achieved GFLOP/s of a square matmul at the current torch thread count."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * size**3 * reps / (time.perf_counter() - t0) / 1e9


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
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    pairs = data.load_split("harmless_test", n=args.n // 2, seed=0)
    texts = [p.transcript("chosen") for p in pairs] + [p.transcript("rejected") for p in pairs]
    print(f"{len(texts)} real HH transcripts, max_length {args.max_length}, batch {args.batch}")
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}
        print(f"\n== {threads} thread(s): matmul fp32 {peak['float32']:.1f} GFLOP/s, bf16 {peak['bfloat16']:.1f} GFLOP/s")
        for name in args.rungs:
            lm = models.load(name, device="cpu", dtype="float32")
            lm16 = models.load(name, device="cpu", dtype="bfloat16")  # what the notebooks load
            n_tok = sum(len(x) for x in lm.tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"])
            flops_per_tok = 2 * non_embedding_params(lm.model)
            naive(lm, texts[:2], args.max_length)  # warm-up
            t_naive, ref = timed(lambda: naive(lm, texts, args.max_length))
            results = {"naive": (t_naive, "float32")}
            for label, dtype, model in (("ours-fp32", "float32", lm.model), ("ours", "bfloat16", lm16.model)):
                spec = FeatureSpec(pooling="last", max_length=args.max_length, dtype=dtype, batch_size=args.batch)
                t, x = timed(lambda: features.compute(model, lm.tokenizer, texts, spec, progress=False))
                cos = torch.nn.functional.cosine_similarity(x, ref).min().item()
                results[label] = (t, dtype)
                print(f"   {name:>13} {label:>9}: min cosine to naive {cos:.5f}")
            for label, (t, dtype) in results.items():
                tps = n_tok / t
                share = tps * flops_per_tok / 1e9 / peak[dtype]
                rows.append((threads, name, label, tps, t_naive / t, share))
                print(f"   {name:>13} {label:>9}: {tps:8.0f} tok/s  x{t_naive / t:5.2f} vs naive  "
                      f"{100 * share:5.1f}% of {dtype} matmul peak")
    print("\nthreads rung           run        tok/s  vs-naive  %peak")
    for threads, name, label, tps, ratio, share in rows:
        print(f"{threads:>7} {name:<14} {label:<9} {tps:8.0f}  {ratio:8.2f}  {100 * share:5.1f}")


if __name__ == "__main__":
    main()
