"""What a training run costs in each regime, measured in one run on this machine.

    python bench/bench_regimes.py [--rung smollm2-135m] [--n 400] [--steps 3]

probe, cached    fit a linear head on features already in the cache (the chapters' default)
probe, naive     the same run without a feature cache: extract the features, then fit
finetune step    one RewardTrainer step of --batch pairs (whole model, fp32, CPU)

Prints seconds and the ratios naive / cached and finetune-epoch / cached, so the numbers
compare across machines. Uses a private cache folder, so the first probe run is a true miss.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from transformers import TrainerCallback


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rung", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=400, help="training pairs")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3, help="fine-tuning steps to time")
    ap.add_argument("--max-length", type=int, default=128)
    args = ap.parse_args()

    models_cache = os.environ.get("W2S_CACHE_DIR")
    from w2s_helpers.core import data, features, models
    from w2s_helpers.core.features import FeatureSpec
    from w2s_helpers.rewards import finetune, heads

    pairs = data.load_split("harmless_gt", n=args.n, seed=0)
    from w2s_helpers.core import precision

    dtype = precision.resolve("auto", "cpu")  # what the profiles use on this machine (never emulated bf16)
    print(f"features in {dtype}: {precision.explain('auto', 'cpu').reason}")
    spec = FeatureSpec(pooling="last", max_length=args.max_length, dtype=dtype, batch_size=32, batch_tokens=2048)
    backbone = models.load(args.rung, dtype=dtype)

    def probe_run() -> float:
        t0 = time.perf_counter()
        c, r = features.pair_features(backbone, pairs, spec, progress=False)
        mu, sd = torch.cat([c, r]).mean(0), torch.cat([c, r]).std(0).clamp(min=1e-6)
        a, b, y = heads.slot_order((c - mu) / sd, (r - mu) / sd, seed=0)
        heads.fit_pairwise_head(a - b, y, l2=1.0)
        return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["W2S_CACHE_DIR"] = tmp  # features: a private, empty cache
        t_naive = probe_run()
        t_cached = probe_run()
    if models_cache:
        os.environ["W2S_CACHE_DIR"] = models_cache
    else:
        os.environ.pop("W2S_CACHE_DIR")

    rm = models.load(args.rung, head="reward", device="cpu", dtype="float32")
    n_ft = args.batch * (args.steps + 1)
    ds = finetune.preference_dataset(rm.tokenizer, pairs[:n_ft], [1.0] * n_ft, max_length=args.max_length)
    cfg = finetune.FinetuneConfig(batch_size=args.batch, max_length=args.max_length, use_cpu=True)
    trainer = finetune.make_trainer(rm, ds, cfg)
    times = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            times.append(-time.perf_counter())

        def on_step_end(self, *a, **k):
            times[-1] += time.perf_counter()

    trainer.add_callback(StepTimer())
    trainer.train()
    t_step = sum(times[1:]) / max(1, len(times) - 1)  # the first step warms up
    t_epoch = t_step * args.n / args.batch
    print(f"rung {args.rung}, {args.n} pairs, max_length {args.max_length}, torch threads {torch.get_num_threads()}")
    print(f"probe run, features cached : {t_cached:8.2f} s")
    print(f"probe run, no feature cache: {t_naive:8.2f} s   ({t_naive / t_cached:6.0f}x the cached run)")
    print(f"finetune step of {args.batch} pairs : {t_step:8.2f} s   (one epoch of {args.n} pairs ~ {t_epoch:.0f} s, "
          f"{t_epoch / t_cached:.0f}x the cached probe run)")


if __name__ == "__main__":
    main()
